/**
 * Section 4, ingest: files on disk → searchable, through the job path (Services.createJob, which
 * runs runIndexJob), in images/s, as a ratio of the raw vision session's throughput measured in the
 * same run with the same thread count (batch 32, pre-made tensors).
 */
import { existsSync } from 'node:fs'
import { mkdir, readFile, readdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { loadEncoder, loadModelFolder, prepareImage } from '../src/ml/index.js'
import type { ServicesConfig } from '../src/config.js'
import type { Services } from '../src/services/types.js'
import { machineInfo } from './lib/machine.js'
import { openRawSession, runVision } from './lib/onnx-raw.js'
import { fmt, ratio, timeLoop } from './lib/stats.js'
import type { BenchOptions, SectionResult, Target } from './lib/types.js'
import { makeVariants } from './lib/variants.js'

const TARGET = 0.8
const BATCH = 32
const THREADS = 1

type OpenServices = (cfg: ServicesConfig, ...rest: unknown[]) => Promise<Services>

/** src/services/index.ts is written in parallel: load it by a computed path so the benchmark type-checks without it. */
async function findOpenServices (): Promise<OpenServices | undefined> {
  const file = path.resolve('src/services/index.ts')
  if (!existsSync(file)) return undefined
  const mod = await import(file) as { openServices?: OpenServices }
  return mod.openServices
}

/** images/s of the raw vision session on pre-made tensors, and of the encoder pipeline (decode + encode) */
async function encoderBaselines (opts: BenchOptions, files: string[]): Promise<{ raw: number, pipeline: number }> {
  const folder = await loadModelFolder(opts.modelDir)
  const { inputHeight: h, inputWidth: w } = folder.preprocessor
  const bytes = await Promise.all(files.slice(0, BATCH).map(async (f) => await readFile(f)))
  const prepared = await Promise.all(bytes.map(async (b) => await prepareImage(b, folder.preprocessor)))
  const px = new Float32Array(BATCH * 3 * h * w)
  prepared.forEach((p, i) => px.set(p.pixels, i * 3 * h * w))
  const s = await openRawSession(folder.visionPath, THREADS)
  const r = await timeLoop(async () => await runVision(s, px, BATCH, h, w), { minMs: 3000 })
  await s.release()
  const enc = await loadEncoder({ modelDir: opts.modelDir, executionProvider: 'cpu', workers: 1, threads: THREADS, maxBatch: BATCH })
  const p = await timeLoop(async () => await enc.encodeImages(bytes), { minMs: 3000 })
  await enc.close()
  return { raw: (r.iters * BATCH) / (r.ms / 1000), pipeline: (p.iters * BATCH) / (p.ms / 1000) }
}

export async function ingestSection (opts: BenchOptions, log: (m: string) => void): Promise<SectionResult> {
  const started = performance.now()
  const machine = machineInfo()
  const base = { id: 'ingest', title: 'Ingest: files on disk → searchable, against the raw encoder', machine, dataset: '', params: {}, tables: [], targets: [], notes: [] }
  const openServices = await findOpenServices()
  if (openServices === undefined) return { ...base, skipped: 'src/services/index.ts (openServices) does not exist yet', wallMs: performance.now() - started }

  const importDir = path.join(opts.workDir, 'import')
  const jobDir = 'service-job' // the same files as the service section's job: made once, reused
  const variants = await makeVariants(opts.poolDir, path.join(importDir, jobDir), opts.importN, 1)
  const files = (await readdir(path.join(importDir, jobDir))).filter((f) => !f.startsWith('.')).map((f) => path.join(importDir, jobDir, f))
  log(`ingest: ${files.length} files ${variants.cached ? '(reused)' : `made in ${fmt(variants.ms / 1000)} s`}; measuring the raw encoder`)
  const baseline = await encoderBaselines(opts, files)

  const dataDir = path.join(opts.workDir, 'ingest-data')
  await rm(dataDir, { recursive: true, force: true })
  await mkdir(dataDir, { recursive: true })
  const cfg: ServicesConfig = {
    modelDir: opts.modelDir, dataDir, importDir, executionProvider: 'cpu', encoderWorkers: 1, encoderThreads: THREADS,
    maxImagePixels: 1e8, hnsw: { M: opts.M, efConstruction: opts.efConstruction, efSearch: 64 }, checkpointEvery: 1000
  }
  const services = await openServices(cfg)
  let done
  let ms
  let stats
  try {
    const t0 = performance.now()
    const id = services.createJob({ directory: jobDir })
    for (;;) {
      const j = services.getJob(id)
      if (j !== undefined && ['done', 'failed', 'cancelled'].includes(j.status)) { done = j; break }
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    ms = performance.now() - t0
    stats = services.stats()
  } finally {
    await services.close()
  }
  const ips = (done.done - done.failed) / (ms / 1000)
  const x = ratio(ips, baseline.raw)
  log(`ingest: ${fmt(ips)} images/s vs raw encoder ${fmt(baseline.raw)} images/s (${fmt(x)}×)`)
  const targets: Target[] = [{ section: 'ingest', name: 'ingest ÷ raw encoder throughput', goal: `≥ ${TARGET}`, measured: x, unit: '×', met: x >= TARGET, detail: `${fmt(ips)} vs ${fmt(baseline.raw)} images/s` }]
  return {
    ...base,
    dataset: `${files.length} variants of demo pool images (half PNG 128 px, half JPEG 256 px), distinct hashes, in a fresh DATA_DIR`,
    params: { path: 'openServices → createJob({directory}) → runIndexJob', 'encoder workers': 1, 'intra-op threads': THREADS, 'raw batch': BATCH, M: opts.M, efConstruction: opts.efConstruction },
    tables: [{
      title: 'Images per second',
      columns: ['what', 'images/s', '÷ raw encoder'],
      rows: [
        ['raw vision session, batch 32, pre-made tensors', fmt(baseline.raw), '1'],
        ['encoder pipeline encodeImages (decode + encode), batch 32', fmt(baseline.pipeline), fmt(ratio(baseline.pipeline, baseline.raw))],
        [`index job, end to end (${done.done} items, ${done.failed} failed, ${stats.images} images searchable)`, fmt(ips), fmt(x)]
      ]
    }],
    targets,
    notes: ['End to end = from createJob until the job reports done: directory walk, file reads, decode + resize + thumbnail, encode, SQLite commit (WAL, synchronous=FULL), HNSW insert, snapshots every 1000 changes.'],
    wallMs: performance.now() - started,
    raw: { baseline, job: done, ms, stats }
  }
}
