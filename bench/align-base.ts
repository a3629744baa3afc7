/**
 * Section 6, ALIGN at full size on CPU: models/align-base (the exported checkpoint) when present, else
 * models/align-base-shape (its exact shape with random weights, `npm run model:align-shape`). The section
 * says which it measured. Ratios are within this one run:
 *  - encode: images/s at batch 1 and 8 and texts/s for short queries through the project's encoder, beside
 *    the raw session on the main thread and this machine's MatMul FLOP bound (onnxruntime MatMul 512³);
 *  - the service: cold start to /ready, RSS of the server and of its background ingest process against
 *    the weights they hold, text search over HTTP (one client, then under load) against align-mini started
 *    the same way, and a directory job's images/s against the raw session's rate on the same images.
 * FLOPs per item from ALIGN-NOTES: vision ≈ 8.4 GMAC at 289², text ≈ 5.5 GMAC at 64 tokens (1 MAC = 2 FLOP).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { mkdir, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import autocannon from 'autocannon'
import { loadEncoder, loadModelFolder, prepareImage, TextTokenizer } from '../src/ml/index.js'
import type { PreparedImage } from '../src/ml/index.js'
import { cores } from './lib/args.js'
import { machineInfo } from './lib/machine.js'
import { matMulGflops, openRawSession, runText, runVision } from './lib/onnx-raw.js'
import { MALLOC_MMAP_THRESHOLD } from '../src/ml/malloc-env.js'
import { modelBytes, visionBatchFor } from '../src/ml/ort-session.js'
import { startTestPostgres } from '../scripts/lib/postgres-server.js'
import { readPool } from './lib/pool.js'
import { FatalError, startServer, waitFor, type ServerHandle } from './lib/server-process.js'
import { fmt, percentile, ratio, timeLoop } from './lib/stats.js'
import type { BenchOptions, Cell, SectionResult, Target } from './lib/types.js'
import { listImages, makeVariants } from './lib/variants.js'

const VISION_GFLOP = 2 * 8.4
const TEXT_GFLOP = 2 * 5.5
const BATCH = 8
const ONE_WORD = ['cat', 'dog', 'beach', 'car', 'tree', 'sunset', 'house', 'flower']
const JOB_IMAGES = 32
const SERIAL_QUERIES = 40
const LOAD_CONNECTIONS = 4
const TARGET_RSS = 1.5
const TARGET_INGEST = 0.8
const TARGET_SEARCH = 2

/** The folder this section measures, and how it was made. */
export function alignBaseFolder (): { dir: string, kind: 'checkpoint' | 'shape' } | undefined {
  if (existsSync('models/align-base/vision.onnx')) return { dir: path.resolve('models/align-base'), kind: 'checkpoint' }
  if (existsSync('models/align-base-shape/vision.onnx')) return { dir: path.resolve('models/align-base-shape'), kind: 'shape' }
  return undefined
}

/** VmRSS and VmHWM (peak) of a process, bytes; undefined once it has exited */
function procMemory (pid: number): { rss: number, hwm: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? Number.NaN) * 1024
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') }
  } catch {
    return undefined
  }
}

function childrenOf (pid: number): number[] {
  const out: number[] = []
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8')
      if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d))
    } catch { /* gone */ }
  }
  return out
}

async function json<T> (url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, init)
  if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: ${res.status} ${await res.text()}`)
  return await res.json() as T
}

async function searchOnce (url: string, text: string): Promise<number> {
  const t0 = performance.now()
  await json(`${url}/v1/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: [{ text }], k: 10 }) })
  return performance.now() - t0
}

interface ServiceRun { readyMs: number, serverRss: number, serial: { p50: number, p99: number }, load: { rps: number, p50: number, p99: number, errors: number }, job?: { images: number, ms: number, failed: number, serverHwm: number, childHwm: number | undefined, childPid: number | undefined } }

/** One server on `modelDir`: cold start, one-client and loaded text search, and optionally a directory job. */
async function measureService (opts: BenchOptions, modelDir: string, tag: string, durationS: number, job: { importDir: string, dir: string } | undefined, log: (m: string) => void, env: Record<string, string> = {}): Promise<ServiceRun> {
  const dataDir = path.join(opts.workDir, `align-base-${tag}-data`)
  await rm(dataDir, { recursive: true, force: true })
  await mkdir(dataDir, { recursive: true })
  const logFile = path.join(opts.workDir, `align-base-${tag}-server.log`)
  const t0 = performance.now()
  const s: ServerHandle = await startServer({ DATA_DIR: dataDir, IMPORT_DIR: job?.importDir ?? dataDir, MODEL_DIR: modelDir, DEMO_POOL: '', LOG_LEVEL: 'warn', RATE_LIMIT_MAX: '0', ...opts.serverEnv, ...env }, logFile)
  try {
    await waitFor('GET /ready', async () => {
      if (s.proc.exitCode !== null) throw new FatalError(`the server exited (${s.proc.exitCode}); see ${logFile}`)
      return (await fetch(`${s.url}/ready`)).ok ? true : undefined
    }, 300_000, 100)
    const readyMs = performance.now() - t0
    const pid = s.proc.pid!
    const serverRss = procMemory(pid)?.rss ?? Number.NaN
    log(`align-base: ${tag} ready in ${fmt(readyMs / 1000)} s, RSS ${fmt(serverRss / 2 ** 20)} MiB`)
    for (let i = 0; i < 3; i++) await searchOnce(s.url, ONE_WORD[i]!) // warm-up
    const serial: number[] = []
    for (let i = 0; i < SERIAL_QUERIES; i++) serial.push(await searchOnce(s.url, ONE_WORD[i % ONE_WORD.length]!))
    serial.sort((a, b) => a - b)
    let i = 0
    const r = await autocannon({
      url: s.url,
      connections: LOAD_CONNECTIONS,
      duration: durationS,
      timeout: 60,
      requests: [{ method: 'POST', path: '/v1/search', headers: { 'content-type': 'application/json' }, setupRequest: (req) => ({ ...req, body: JSON.stringify({ query: [{ text: `a photo of a ${ONE_WORD[i++ % ONE_WORD.length]!}` }], k: 10 }) }) }]
    })
    const out: ServiceRun = { readyMs, serverRss, serial: { p50: percentile(serial, 50), p99: percentile(serial, 99) }, load: { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts + r.non2xx } }
    if (job !== undefined) {
      const j0 = performance.now()
      const { jobId } = await json<{ jobId: string }>(`${s.url}/v1/index-jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ directory: job.dir }) })
      let childPid: number | undefined
      let childHwm: number | undefined
      const end = await waitFor('the job to finish', async () => {
        // the background ingest process starts with the job's first batch; the server may have other short-lived
        // children, so the largest peak among them is the one holding the vision tower
        for (const c of childrenOf(pid)) {
          const hwm = procMemory(c)?.hwm
          if (hwm !== undefined && (childHwm === undefined || hwm > childHwm)) { childHwm = hwm; childPid = c }
        }
        const v = await json<{ status: string, done: number, failed: number, total: number }>(`${s.url}/v1/index-jobs/${jobId}`)
        return ['done', 'failed', 'cancelled'].includes(v.status) ? v : undefined
      }, 1_800_000, 200)
      out.job = { images: end.done, failed: end.failed, ms: performance.now() - j0, serverHwm: procMemory(pid)?.hwm ?? Number.NaN, childHwm, childPid }
      log(`align-base: ${tag} job ${end.done} images in ${fmt(out.job.ms / 1000)} s`)
    }
    return out
  } finally {
    await s.stop()
  }
}

/** The service on PostgreSQL at the model's dimension, `vector` and `halfvec`, each in a fresh database of one throwaway cluster. */
async function measureOnPostgres (opts: BenchOptions, modelDir: string, job: { importDir: string, dir: string }, log: (m: string) => void): Promise<{ runs: Array<{ vectorType: string, run: ServiceRun }> } | { skipped: string }> {
  const server = await startTestPostgres({ engine: 'server' })
  if (!('url' in server)) return { skipped: `no PostgreSQL: ${server.skip}` }
  try {
    const runs: Array<{ vectorType: string, run: ServiceRun }> = []
    for (const vectorType of ['vector', 'halfvec']) {
      const url = runs.length === 0 ? server.url : await server.newDatabase()
      runs.push({ vectorType, run: await measureService(opts, modelDir, `pg-${vectorType}`, opts.duration, job, log, { DATABASE_URL: url, PG_VECTOR_TYPE: vectorType, INDEX_WORKER: 'on' }) })
    }
    return { runs }
  } finally {
    await server.stop()
  }
}

export async function alignBaseSection (opts: BenchOptions, log: (m: string) => void): Promise<SectionResult> {
  const started = performance.now()
  const machine = machineInfo()
  const base = { id: 'align-base', title: 'ALIGN at full size (EfficientNet-B7 289 px + BERT-base, 640-d) on CPU', machine, dataset: '', params: {}, tables: [], targets: [], notes: [] }
  const found = alignBaseFolder()
  if (found === undefined) {
    return { ...base, skipped: 'neither models/align-base (python3 tools/export_align.py --checkpoint kakaobrain/align-base --out models/align-base) nor models/align-base-shape (npm run model:align-shape, a few minutes, no download) is present', wallMs: performance.now() - started }
  }
  const { dir, kind } = found
  const which = kind === 'checkpoint' ? 'models/align-base (exported kakaobrain/align-base)' : 'models/align-base-shape: align-base\'s exact shape with RANDOM weights (npm run model:align-shape); speed and memory only, its rankings mean nothing'
  log(`align-base: measuring ${which}`)
  const threads = cores()
  const gflops = await matMulGflops(threads)
  const folder = await loadModelFolder(dir)
  const pre = folder.preprocessor
  const [vBytes, tBytes] = [modelBytes(folder.visionPath), modelBytes(folder.textPath)]
  const weights = vBytes! + tBytes!
  const pool = (await readPool(opts.poolDir)).slice(0, BATCH)
  const prepared: PreparedImage[] = await Promise.all(pool.map(async (it) => await prepareImage(await readFile(path.join(opts.poolDir, it.file)), pre)))
  const queries = pool.map((it) => it.label)

  // the raw sessions on this thread, with the service's session options: the ceiling the service is held to
  log('align-base: raw sessions')
  const per = 3 * pre.inputHeight * pre.inputWidth
  const batchPixels = new Float32Array(BATCH * per)
  prepared.forEach((p, i) => batchPixels.set(p.pixels, i * per))
  const rawV = await openRawSession(folder.visionPath, 1)
  const raw1 = await timeLoop(async () => { await runVision(rawV, prepared[0]!.pixels, 1, pre.inputHeight, pre.inputWidth) }, { minMs: 5000, minIters: 3 })
  const raw8 = await timeLoop(async () => { await runVision(rawV, batchPixels, BATCH, pre.inputHeight, pre.inputWidth) }, { minMs: 5000, minIters: 2 })
  await rawV.release()
  const rawT = await openRawSession(folder.textPath, 1)
  const tok = TextTokenizer.fromFile(folder.tokenizerPath, folder.config.maxTextLength, folder.config.usesTokenTypeIds)
  const oneWord = await tok.encodeBatch(['cat'])
  const rawText = await timeLoop(async () => { await runText(rawT, oneWord) }, { minMs: 3000, minIters: 10 })
  await rawT.release()
  const rawVision1Ips = raw1.iters / (raw1.ms / 1000)
  const rawVision8Ips = (raw8.iters * BATCH) / (raw8.ms / 1000)
  const rawTextMs = rawText.ms / rawText.iters

  // the project's encoder (worker thread), as the service runs it by default: 1 worker × 1 thread
  log('align-base: encoder')
  const enc = await loadEncoder({ modelDir: dir, executionProvider: 'cpu', workers: 1, threads: 1, maxBatch: BATCH })
  let e1: number, e8: number, tps: number
  try {
    const a = await timeLoop(async () => await enc.encodePrepared(prepared.slice(0, 1)), { minMs: 5000, minIters: 3 })
    const b = await timeLoop(async () => await enc.encodePrepared(prepared), { minMs: 5000, minIters: 2 })
    const t = await timeLoop(async () => await enc.encodeTexts(queries), { minMs: 5000, minIters: 2 })
    e1 = a.iters / (a.ms / 1000)
    e8 = (b.iters * BATCH) / (b.ms / 1000)
    tps = (t.iters * BATCH) / (t.ms / 1000)
  } finally {
    await enc.close()
  }

  // a directory job over pool variants (PNG 128 px / JPEG 256 px), and the raw session's rate on the same images
  const importDir = path.join(opts.workDir, 'align-base-import')
  const jobDir = 'align-base-job'
  await makeVariants(opts.poolDir, path.join(importDir, jobDir), JOB_IMAGES, 3)
  const files = (await listImages(path.join(importDir, jobDir))).slice(0, JOB_IMAGES)
  const jobPrepared = await Promise.all(files.map(async (f) => await prepareImage(await readFile(f), pre)))
  // the ceiling: the raw session's better rate of batch 1 and batch 8 on these images
  const rawJob = await openRawSession(folder.visionPath, 1)
  const rawJobRate: Record<number, number> = {}
  for (const b of [1, BATCH]) {
    const tj0 = performance.now()
    for (let i = 0; i < jobPrepared.length; i += b) {
      const run = jobPrepared.slice(i, i + b)
      const px = new Float32Array(run.length * per)
      run.forEach((p, k) => px.set(p.pixels, k * per))
      await runVision(rawJob, px, run.length, pre.inputHeight, pre.inputWidth)
    }
    rawJobRate[b] = jobPrepared.length / ((performance.now() - tj0) / 1000)
  }
  const rawJobIps = Math.max(rawJobRate[1]!, rawJobRate[BATCH]!)
  await rawJob.release()
  // one at a time: decodeMs of concurrent prepares would include their wait for a libuv thread
  const seq0 = performance.now()
  for (const f of files.slice(0, 8)) await prepareImage(await readFile(f), pre)
  const decodeMsPerImage = (performance.now() - seq0) / Math.min(8, files.length)

  log('align-base: the service at full size, then align-mini the same way')
  const full = await measureService(opts, dir, 'full', opts.duration, { importDir, dir: jobDir }, log)
  const mini = await measureService(opts, path.resolve('models/align-mini'), 'mini', opts.duration, undefined, log)
  const onPostgres = await measureOnPostgres(opts, dir, { importDir, dir: jobDir }, log)

  const job = full.job!
  const jobIps = job.images / (job.ms / 1000)
  const MiBf = (b: number | undefined): string => b === undefined ? '–' : fmt(b / 2 ** 20)
  const targets: Target[] = [
    { section: 'align-base', name: 'server RSS after /ready ÷ weights it holds', goal: `≤ ${TARGET_RSS}×`, measured: ratio(full.serverRss, weights), unit: '×', met: ratio(full.serverRss, weights) <= TARGET_RSS, detail: `${MiBf(full.serverRss)} MiB vs ${MiBf(weights)} MiB (vision + text); peak during the job ${MiBf(job.serverHwm)} MiB` },
    { section: 'align-base', name: 'background ingest process peak RSS ÷ weights it holds', goal: `≤ ${TARGET_RSS}×`, measured: job.childHwm === undefined ? null : ratio(job.childHwm, vBytes!), unit: '×', met: job.childHwm === undefined ? null : ratio(job.childHwm, vBytes!) <= TARGET_RSS, detail: job.childHwm === undefined ? 'no child process seen' : `${MiBf(job.childHwm)} MiB vs ${MiBf(vBytes)} MiB (vision.onnx and its external data)` },
    { section: 'align-base', name: 'directory-job ingest ÷ raw session images/s (same images)', goal: `≥ ${TARGET_INGEST}×`, measured: ratio(jobIps, rawJobIps), unit: '×', met: ratio(jobIps, rawJobIps) >= TARGET_INGEST, detail: `${fmt(jobIps)} vs ${fmt(rawJobIps)} images/s (${job.images} images, ${job.failed} failed)` },
    { section: 'align-base', name: 'one-word text search p50 over HTTP ÷ raw text session', goal: `≤ ${TARGET_SEARCH}×`, measured: ratio(full.serial.p50, rawTextMs), unit: '×', met: ratio(full.serial.p50, rawTextMs) <= TARGET_SEARCH, detail: `${fmt(full.serial.p50)} ms vs ${fmt(rawTextMs)} ms for "cat"` }
  ]
  const svcRow = (name: string, r: ServiceRun): Cell[] => [name, fmt(r.readyMs / 1000), MiBf(r.serverRss), fmt(r.serial.p50), fmt(r.serial.p99), fmt(r.load.rps), fmt(r.load.p50), fmt(r.load.p99), r.load.errors]
  return {
    ...base,
    dataset: `${which}; ${folder.config.modelId}, ${pre.inputWidth}×${pre.inputHeight} input; pool images and labels; a directory job of ${job.images} pool variants`,
    params: { model: kind === 'checkpoint' ? 'models/align-base' : 'models/align-base-shape (random weights)', batch: BATCH, 'MatMul threads': threads, 'MatMul GFLOP/s': Number(gflops.toPrecision(3)), 'server env': Object.keys(opts.serverEnv).length === 0 ? 'defaults (1 encoder worker × 1 thread)' : Object.entries(opts.serverEnv).map(([k, v]) => `${k}=${v}`).join(' '), 'weights MiB': Number((weights / 2 ** 20).toFixed(0)) },
    tables: [{
      title: 'Encode throughput, against the FLOP bound (ratios for information: EfficientNet is memory-bound)',
      columns: ['what', 'GFLOP/item (notes)', 'raw session (1 thread, main thread) items/s', 'encoder (1 worker × 1 thread) items/s', 'bound items/s (all cores)', 'encoder ÷ bound'],
      rows: [
        ['vision, one image per call', VISION_GFLOP, fmt(rawVision1Ips), fmt(e1), fmt(gflops / VISION_GFLOP), fmt(ratio(e1, gflops / VISION_GFLOP))],
        [`vision, ${BATCH} images per call (the encoder runs them in batches of ${visionBatchFor(pre.inputHeight, pre.inputWidth, BATCH)})`, VISION_GFLOP, fmt(rawVision8Ips), fmt(e8), fmt(gflops / VISION_GFLOP), fmt(ratio(e8, gflops / VISION_GFLOP))],
        ['text, batch 8 short labels', TEXT_GFLOP, '', fmt(tps), fmt(gflops / TEXT_GFLOP), fmt(ratio(tps, gflops / TEXT_GFLOP))],
        ['text, one word ("cat"), batch 1', '', fmt(1000 / rawTextMs), '', '', '']
      ]
    }, {
      title: `The service: cold start, RSS and text search over HTTP (one client: ${SERIAL_QUERIES} sequential one-word queries; load: ${LOAD_CONNECTIONS} connections for ${opts.duration} s, "a photo of a …")`,
      columns: ['model', '/ready s', 'server RSS MiB', 'one client p50 ms', 'one client p99 ms', 'load req/s', 'load p50 ms', 'load p99 ms', 'errors'],
      rows: [svcRow(kind === 'checkpoint' ? 'align-base' : 'align-base-shape', full), svcRow('align-mini', mini)]
    }, {
      title: 'Ingest and memory at full size',
      columns: ['what', 'value'],
      rows: [
        ['directory job images/s (background process, nice 19)', fmt(jobIps)],
        [`raw vision session images/s on the same images, batch 1 / batch ${BATCH} (decode excluded)`, `${fmt(rawJobRate[1])} / ${fmt(rawJobRate[BATCH])}`],
        ['read + decode + preprocess ms per image, one at a time (these images)', fmt(decodeMsPerImage)],
        ['weights: vision + text tower MiB (.onnx and external data)', `${MiBf(vBytes)} + ${MiBf(tBytes)}`],
        ['server RSS after /ready; peak by the end of the job, MiB', `${MiBf(full.serverRss)}; ${MiBf(job.serverHwm)}`],
        ['background ingest process peak RSS MiB', MiBf(job.childHwm)]
      ]
    }, {
      title: `PostgreSQL + pgvector at ${folder.config.embeddingDim}-d: the same searches and job, one database per vector type (the API indexing in-process, INDEX_WORKER=on)`,
      columns: ['vector type', '/ready s', 'server RSS MiB', 'one client p50 ms', 'one client p99 ms', 'load req/s', 'load p50 ms', 'load p99 ms', 'errors', 'job images/s', 'job failed'],
      rows: 'skipped' in onPostgres
        ? [[`not run: ${onPostgres.skipped}`, '', '', '', '', '', '', '', '', '', '']]
        : onPostgres.runs.map(({ vectorType, run }) => [...svcRow(vectorType, run), fmt(run.job!.images / (run.job!.ms / 1000)), run.job!.failed])
    }],
    targets,
    notes: [
      `Measured folder: ${which}.`,
      'The raw sessions run on the benchmark\'s main thread with the service\'s session options and 1 intra-op thread, as the service\'s default ONNX worker does; the bound uses all cores.',
      `Load average at the start of the run: ${machine.load1} on ${threads} cores (other work shares this machine): the background ingest process runs at nice 19 by design, so under foreign load it gets a small share, and single measurements here are noisy.`,
      'The one-client text search is POST /v1/search {query:[{text:"cat"…}], k:10} over loopback on an empty index: tokenize, the text tower in the ONNX worker, and the HTTP round trip.',
      `Memory: every process here starts with MALLOC_MMAP_THRESHOLD_=${process.env.MALLOC_MMAP_THRESHOLD_ ?? MALLOC_MMAP_THRESHOLD} as npm start does (src/ml/malloc-env.ts), and the exporter writes towers of 64 MiB or more as ONNX external data (models/README.md). Before those two (same folder, same section, 2026-12-04): server 1,095 MiB after /ready (1.68×), ingest process peak 771 MiB (3.27×).`
    ],
    wallMs: performance.now() - started,
    raw: { rawJobRate, rawVision1Ips, rawVision8Ips, rawTextMs, e1, e8, tps, full, mini, rawJobIps, decodeMsPerImage, weights, vBytes, tBytes, gflops }
  }
}
