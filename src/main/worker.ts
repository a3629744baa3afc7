/**
 * `npm run worker`: an index worker, the process concerns only (config, logger, optional health
 * port, graceful shutdown). It takes batches from the shared queue in PostgreSQL (DATABASE_URL),
 * encodes them with this machine's EXECUTION_PROVIDER and commits them; it serves no API.
 * A database that does not answer yet is waited for (with backoff; /ready says why), so a process
 * manager never sees a crash loop; one that answers but cannot be used ends the process.
 * SIGINT/SIGTERM: no new batches; those in hand finish (or go back to the queue), then it exits;
 * a second signal (not npm's echo of the first: stop-signals.ts) exits at once.
 */
import { pino } from 'pino'
import { toServicesConfig } from './config/config.js'
import { readConfigOrExit } from './read-config.js'
import { openIndexWorker, WorkerNeedsDatabaseError, type IndexWorkerProcess } from './wiring/open-index-worker.js'
import { isUnreachable } from './wiring/open-when-reachable.js'
import { onStopSignals, type StopSignal } from './stop-signals.js'
import { buildWorkerApp, type WorkerApp } from '../http/worker-app.js'

const SHUTDOWN_GRACE_MS = 30_000
/** waits between tries to reach the database: doubling from the first to the last */
const RETRY_FIRST_MS = 1000
const RETRY_MAX_MS = 30_000

async function main (): Promise<void> {
  const config = readConfigOrExit()
  const logger = pino({ level: config.logLevel }).child({ role: 'worker' })
  if (config.database === undefined) {
    logger.fatal(new WorkerNeedsDatabaseError().message)
    process.exit(78)
  }

  let worker: IndexWorkerProcess | undefined
  let http: WorkerApp | undefined
  let closing = false
  let waitingFor: string | undefined
  if (config.workerPort !== undefined) {
    http = await buildWorkerApp(config, logger, {
      running: () => worker !== undefined && !closing,
      health: async () => worker === undefined ? { ok: false, reason: waitingFor ?? 'starting' } : await worker.health(),
      inFlight: () => worker?.worker.inFlight ?? 0
    })
    // listening before the model loads: /health answers at once, /ready once the worker runs
    await http.app.listen({ port: config.workerPort, host: config.host })
  }

  const shutdown = (signal: StopSignal, again = false): void => {
    if (again) {
      logger.warn({ signal }, 'second signal: exiting without waiting')
      process.exit(130)
    }
    if (closing) return
    closing = true
    logger.info({ signal }, 'shutting down: finishing the batches in hand')
    const timer = setTimeout(() => {
      logger.error({ graceMs: SHUTDOWN_GRACE_MS }, 'shutdown took too long: exiting')
      process.exit(1)
    }, SHUTDOWN_GRACE_MS)
    timer.unref()
    Promise.all([worker?.close(), http?.app.close()]).then(() => {
      logger.info('bye')
      process.exit(0)
    }, (err: unknown) => {
      logger.error({ err }, 'error while shutting down')
      process.exit(1)
    })
  }
  onStopSignals(shutdown)
  process.on('unhandledRejection', (err) => { logger.error({ err }, 'unhandled rejection') })

  for (let delay = RETRY_FIRST_MS; ; delay = Math.min(RETRY_MAX_MS, delay * 2)) {
    try {
      worker = await openIndexWorker(toServicesConfig(config), logger, http?.onBatch)
      break
    } catch (err) {
      if (!isUnreachable(err)) throw err
      waitingFor = `PostgreSQL does not answer yet: ${(err as Error).message}`
      logger.warn({ err: (err as Error).message, retryInMs: delay }, 'index worker: the database does not answer; trying again')
      await new Promise((resolve) => setTimeout(resolve, delay))
      if (closing) return
    }
  }
  if (closing) { await worker.close(); return }
  logger.info({ provider: worker.provider, importDir: config.importDir, batchSize: config.indexBatchSize, port: config.workerPort ?? null }, 'index worker is up: taking batches from the queue')
}

main().catch((err: unknown) => {
  pino({ base: undefined }).fatal({ err }, 'the index worker failed to start')
  process.exit(1)
})
