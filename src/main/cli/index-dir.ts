/**
 * Indexes a folder offline: `npm run index -- <dir>`.
 * Same code path as POST /v1/index-jobs {"directory"}: the services open the model and the
 * index from the environment (DATA_DIR, MODEL_DIR, …), a directory job runs over <dir>
 * (recursively, skipping files already indexed), and a progress bar follows it.
 * Ctrl-C (or SIGTERM) cancels the job; what was indexed stays indexed and is checkpointed on exit.
 */
import { statSync } from 'node:fs'
import path from 'node:path'
import { pino } from 'pino'
import { ConfigError, ensureDirs, loadConfig, type Config } from '../config/config.js'
import { toServicesConfig } from '../wiring/services-config.js'
import { openServerServices } from '../wiring/open-services.js'
import type { JobView, Services } from '../../services/types.js'
import { DataDirBusyError, lockDataDir, type DataDirLock } from '../data-dir-lock.js'
import { onStopSignals } from '../stop-signals.js'

const USAGE = 'usage: npm run index -- <dir> [--id-from-path]   (indexes every image under <dir> into DATA_DIR; --id-from-path: each image\'s id is its path under <dir>, "/" written as ":")'
const POLL_MS = 250
const BAR_WIDTH = 30

/** One line of progress, e.g. `[#######-------] 120/500  3 failed  24.0 img/s  ETA 16s  running` (processed = done + failed). */
export function progressLine (job: JobView, elapsedS: number): string {
  const processed = job.done + job.failed
  const total = Math.max(job.total, processed)
  const frac = total === 0 ? 0 : processed / total
  const filled = Math.round(frac * BAR_WIDTH)
  const rate = elapsedS > 0 ? processed / elapsedS : 0
  const eta = rate > 0 && total > processed ? `ETA ${formatSeconds((total - processed) / rate)}` : ''
  return [
    `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`,
    `${processed}/${total}`,
    job.failed > 0 ? `${job.failed} failed` : '',
    `${rate.toFixed(1)} img/s`,
    eta,
    job.status
  ].filter((s) => s !== '').join('  ')
}

function formatSeconds (s: number): string {
  if (s < 60) return `${Math.ceil(s)}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

async function waitReady (services: Services, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!services.ready()) {
    if (Date.now() > until) throw new Error('the services did not become ready in time')
    await sleep(100)
  }
}

/**
 * Runs a directory job over IMPORT_DIR and renders its progress on stderr; resolves with the final job.
 * Every image's source is its path under IMPORT_DIR; with `idFromPath` that path is its id too.
 */
export async function indexDirectory (services: Services, out: NodeJS.WriteStream = process.stderr, opts: { idFromPath?: boolean } = {}): Promise<JobView> {
  // IMPORT_DIR is the folder itself, so the job source is its root
  const jobId = await services.createJob({ directory: '.', ...(opts.idFromPath === true ? { idFromPath: true } : {}) })
  const started = Date.now()
  const stopListening = onStopSignals((_signal, again) => {
    if (again) process.exit(130)
    out.write('\ncancelling (Ctrl-C again to quit at once)…\n')
    services.cancelJob(jobId).catch((err: unknown) => { out.write(`could not cancel: ${(err as Error).message}\n`) })
  })
  let lastLine = 0
  try {
    for (;;) {
      const job = await services.getJob(jobId)
      if (job === undefined) throw new Error(`job ${jobId} vanished`)
      const line = progressLine(job, (Date.now() - started) / 1000)
      const finished = job.status === 'done' || job.status === 'failed' || job.status === 'cancelled'
      if (out.isTTY) {
        out.write(`\r${line}\u001b[K`)
      } else if (finished || Date.now() - lastLine > 5000) {
        out.write(`${line}\n`)
        lastLine = Date.now()
      }
      if (finished) {
        if (out.isTTY) out.write('\n')
        return job
      }
      await sleep(POLL_MS)
    }
  } finally {
    stopListening()
  }
}

/** exit status: 0 all indexed (or already present), 3 some files failed, 1 the job failed or was cancelled */
export const EXIT_SOME_FAILED = 3
export function exitCode (job: JobView): number {
  if (job.status !== 'done') return 1
  return job.failed > 0 ? EXIT_SOME_FAILED : 0
}

async function main (): Promise<void> {
  const arg = process.argv.slice(2).find((a) => !a.startsWith('-'))
  if (arg === undefined || process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stderr.write(`${USAGE}\n`)
    process.exit(arg === undefined ? 2 : 0)
  }
  const dir = path.resolve(arg)
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    process.stderr.write(`not a folder: ${dir}\n${USAGE}\n`)
    process.exit(2)
  }
  let config: Config
  try {
    // never the demo pool: `npm run index` fills an index with the user's own images only
    config = { ...loadConfig({ LOG_LEVEL: 'warn', ...process.env }), importDir: dir, demoPoolDir: undefined }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`)
      process.exit(78)
    }
    throw err
  }
  ensureDirs(config)
  let lock: DataDirLock
  try {
    lock = lockDataDir(config.dataDir, 'npm run index')
  } catch (err) {
    if (!(err instanceof DataDirBusyError)) throw err
    // a server would not see what this process adds, and two writers must not share one index
    process.stderr.write(`${err.message}.\n` +
      'Stop it first, or let the running server index the folder: place it under its IMPORT_DIR and\n' +
      '  curl -X POST http://<server>/v1/index-jobs -H \'content-type: application/json\' -d \'{"directory":"<folder under IMPORT_DIR>"}\'\n' +
      '(or use "Index a folder" on its page).\n')
    process.exit(75) // EX_TEMPFAIL
  }
  const logger = pino({ level: config.logLevel }, pino.destination(2))
  process.stderr.write(`loading ${config.modelDir} and the index in ${config.dataDir}…\n`)
  const services = await openServerServices(toServicesConfig(config), logger, (err) => {
    process.stderr.write(`cannot index: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  })
  let code = 0
  try {
    await waitReady(services, 10 * 60_000)
    process.stderr.write(`indexing ${dir}\n`)
    const job = await indexDirectory(services, process.stderr, { idFromPath: process.argv.includes('--id-from-path') })
    const seconds = (Date.parse(job.updatedAt) - Date.parse(job.createdAt)) / 1000
    process.stderr.write(`${job.status}: ${job.indexed} indexed, ${job.duplicate} already present, ${job.failed} failed, of ${job.total} files${Number.isFinite(seconds) ? ` in ${seconds.toFixed(2)} s` : ''}\n`)
    for (const e of job.errors.slice(0, 20)) process.stderr.write(`  ${e.item}: ${e.error}\n`)
    if (job.errors.length > 20) process.stderr.write(`  … and ${job.errors.length - 20} more\n`)
    const { notImage, unreadable, paths } = job.skipped
    if (notImage + unreadable > 0) {
      process.stderr.write(`skipped ${notImage} not an image by extension, ${unreadable} unreadable${paths.length > 0 ? `, e.g. ${paths.slice(0, 5).map((p) => p.path).join(', ')}` : ''}\n`)
    }
    if (job.warning !== undefined) process.stderr.write(`warning: ${job.warning}\n`)
    code = exitCode(job)
  } finally {
    // closing checkpoints the index
    await services.close()
    lock.release()
  }
  process.exit(code)
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === new URL(import.meta.url).pathname) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  })
}
