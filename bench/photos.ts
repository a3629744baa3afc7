/**
 * Section photos: camera-sized JPEGs (12 and 24 MP, made from Debian's photographic wallpapers)
 * through `npm run index`, a directory job in the server and an image query, each against a
 * baseline measured in the same run: prepareImage alone on the same photos at the same
 * concurrency, the processes' idle RSS, and a full-size decode of the query photo.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import sharp from 'sharp'
import { createLimiter, decodeConcurrency } from '../src/ml/decode-limit.js'
import { DECODE_MARGIN } from '../src/ml/decode-plan.js'
import { cosine, loadEncoder, loadModelFolder, prepareImage } from '../src/ml/index.js'
import { machineInfo } from './lib/machine.js'
import { makePhotos, VARIANTS } from './lib/photos.js'
import { rssMiB, watchTree, type ProcSample } from './lib/proc-tree.js'
import { startServer, waitFor } from './lib/server-process.js'
import { fmt, median, ratio } from './lib/stats.js'
import type { BenchOptions, Cell, SectionResult, Target } from './lib/types.js'

const SIZES = [12, 24]
const JEMALLOC = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2'
const TIME = '/usr/bin/time'
const QUERY_REPEATS = 7
const INGEST_TARGET = 0.8
const RSS_TARGET_MIB = 300
const QUERY_TARGET = 2

/** the service's default preview (PREVIEW_SIZE, PREVIEW_FORMAT), which ingest makes from the same decode */
const PREVIEW = { size: 320, format: 'auto' as const }

/** images/s of prepareImage alone (decode, resize, thumbnail; the preview too when given), `lanes` at a time as the ingest process runs it */
async function prepareRate (bytes: Buffer[], pre: Parameters<typeof prepareImage>[1], lanes: number, opts: Parameters<typeof prepareImage>[2] = {}): Promise<number> {
  const slot = createLimiter(lanes)
  await prepareImage(bytes[0]!, pre, opts)
  const t0 = performance.now()
  await Promise.all(bytes.map(async (b) => await slot(async () => await prepareImage(b, pre, opts))))
  return bytes.length / ((performance.now() - t0) / 1000)
}

interface IndexRun { indexed: number, jobS: number, ips: number, faults: number | null, main: ProcSample | undefined, child: ProcSample | undefined }

/** `npm run index -- <dir>` into a fresh DATA_DIR, under /usr/bin/time -v when present, its process tree sampled */
async function npmIndex (dir: string, dataDir: string, env: Record<string, string>): Promise<IndexRun> {
  await rm(dataDir, { recursive: true, force: true })
  const timed = existsSync(TIME)
  const argv = [...(timed ? [TIME, '-v'] : []), 'npm', 'run', 'index', '--', dir]
  const proc = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, DATA_DIR: dataDir, DEMO_POOL: '', LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
  const tree = watchTree(proc.pid!)
  let err = ''
  proc.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve))
  const samples = tree.stop()
  if (code !== 0) throw new Error(`npm run index exited with ${String(code)}: ${err.slice(-2000)}`)
  const done = /done: (\d+) indexed.* in ([\d.]+) s/.exec(err)
  const indexed = Number(done?.[1] ?? 0)
  const jobS = Number(done?.[2] ?? Number.NaN)
  const faults = /Minor \(reclaiming a frame\) page faults: (\d+)/.exec(err)
  return {
    indexed,
    jobS,
    ips: indexed / jobS,
    faults: faults === null ? null : Number(faults[1]),
    main: samples.find((s) => s.cmdline.includes('index-dir')),
    child: samples.find((s) => s.cmdline.includes('background-process'))
  }
}

/** RSS of a loaded background ingest process that has prepared and encoded one small image (MiB), and how long its first batch took to come back (ms: process start, model load, that image) */
async function measureIdleChild (modelDir: string): Promise<{ rss: number, startMs: number }> {
  const enc = await loadEncoder({ modelDir, executionProvider: 'cpu', workers: 1, threads: 1 })
  try {
    const small = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#468' } }).jpeg().toBuffer()
    const t0 = performance.now()
    await enc.embedForIngest([small], { background: true })
    return { rss: rssMiB(enc.backgroundPid()!), startMs: performance.now() - t0 }
  } finally {
    await enc.close()
  }
}

async function json<T> (url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, init)
  if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: ${res.status} ${await res.text()}`)
  return await res.json() as T
}

interface ServerRun { ips: number, done: number, warmIps: number, warmDone: number, serverIdle: number, serverPeak: number, childPeak: number, queryMs: number[], decodeMs: number[] }

/** Runs a directory job over `sub` in the server at `url`; images/s from POST to its end as polled every 100 ms, and how many it processed */
async function directoryJob (url: string, sub: string): Promise<{ ips: number, done: number }> {
  const t0 = performance.now()
  const { jobId } = await json<{ jobId: string }>(`${url}/v1/index-jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ directory: sub }) })
  const end = await waitFor('the job to finish', async () => {
    const j = await json<{ status: string, done: number, failed: number }>(`${url}/v1/index-jobs/${jobId}`)
    return ['done', 'failed', 'cancelled'].includes(j.status) ? j : undefined
  }, 900_000, 100)
  return { ips: (end.done - end.failed) / ((performance.now() - t0) / 1000), done: end.done }
}

/**
 * In the real server: a directory job over `sub` of `photosDir` (the background process starts with
 * it), then one over `warmSub` (that process already running), then image queries with `query`
 * alternated with full decodes of it here.
 */
async function serverRun (opts: BenchOptions, photosDir: string, sub: string, warmSub: string, query: Buffer): Promise<ServerRun> {
  const dataDir = path.join(opts.workDir, 'photos-server-data')
  await rm(dataDir, { recursive: true, force: true })
  const s = await startServer({ DATA_DIR: dataDir, IMPORT_DIR: photosDir, DEMO_POOL: '', MODEL_DIR: opts.modelDir, LOG_LEVEL: 'warn', RATE_LIMIT_MAX: '0' }, path.join(opts.workDir, 'photos-server.log'))
  try {
    await waitFor('GET /ready', async () => (await fetch(`${s.url}/ready`)).ok ? true : undefined, 180_000)
    const serverIdle = rssMiB(s.proc.pid!)
    const tree = watchTree(s.proc.pid!)
    const cold = await directoryJob(s.url, sub)
    const warm = await directoryJob(s.url, warmSub)
    const samples = tree.stop()
    const queryMs: number[] = []
    const decodeMs: number[] = []
    for (let i = 0; i <= QUERY_REPEATS; i++) {
      const form = new FormData()
      form.append('query', JSON.stringify({ query: [{ file: 'photo' }], k: 10 }))
      form.append('photo', new Blob([new Uint8Array(query)], { type: 'image/jpeg' }), 'photo.jpg')
      const q0 = performance.now()
      await json(`${s.url}/v1/search`, { method: 'POST', body: form })
      const q1 = performance.now()
      await sharp(query).raw().toBuffer() // the whole JPEG decoded at full size, nothing else
      const d1 = performance.now()
      if (i > 0) { queryMs.push(q1 - q0); decodeMs.push(d1 - q1) } // the first of each warms up
    }
    return {
      ips: cold.ips,
      done: cold.done,
      warmIps: warm.ips,
      warmDone: warm.done,
      serverIdle,
      serverPeak: samples.find((p) => p.pid === s.proc.pid)?.hwmMiB ?? Number.NaN,
      childPeak: samples.find((p) => p.cmdline.includes('background-process'))?.hwmMiB ?? Number.NaN,
      queryMs,
      decodeMs
    }
  } finally {
    await s.stop()
  }
}

export async function photosSection (opts: BenchOptions, log: (m: string) => void): Promise<SectionResult> {
  const started = performance.now()
  const machine = machineInfo()
  const photosDir = path.join(opts.workDir, 'photos')
  const made = await makePhotos(photosDir, SIZES)
  const all = [...made.bySize.values()].flat()
  if (all.length === 0) {
    return { id: 'photos', title: 'Photo-sized ingest', machine, skipped: 'no photographs: apt-get install plasma-workspace-wallpapers (its photographic wallpapers are the source)', dataset: '', params: {}, tables: [], targets: [], notes: [], wallMs: performance.now() - started }
  }
  log(`photos: ${all.length} photos ${made.cached ? '(reused)' : `made in ${fmt(made.ms / 1000)} s`}`)
  const pre = (await loadModelFolder(opts.modelDir)).preprocessor
  const lanes = decodeConcurrency()
  const bytes = new Map<number, Buffer[]>()
  for (const [mp, files] of made.bySize) bytes.set(mp, await Promise.all(files.map(async (f) => await readFile(f))))

  // fidelity and the ceilings, in this process
  const enc = await loadEncoder({ modelDir: opts.modelDir, executionProvider: 'cpu', workers: 1, threads: 1 })
  const cosines: number[] = []
  try {
    for (const b of [...bytes.values()].flat()) {
      const [r, f] = await Promise.all([prepareImage(b, pre), prepareImage(b, pre, { fullDecode: true })])
      const [a, c] = await enc.encodePrepared([r, f])
      cosines.push(cosine(a!, c!))
    }
  } finally {
    await enc.close()
  }
  log(`photos: embedding cosine, reduced vs full decode: min ${fmt(Math.min(...cosines), 5)}`)
  const ceiling = new Map<number, { reduced: number, full: number, preview: number }>()
  for (const [mp, bs] of bytes) {
    ceiling.set(mp, { reduced: await prepareRate(bs, pre, lanes), full: await prepareRate(bs, pre, lanes, { fullDecode: true }), preview: await prepareRate(bs, pre, lanes, { preview: PREVIEW }) })
  }
  const { rss: idleChild, startMs: childStartMs } = await measureIdleChild(opts.modelDir)

  // npm run index: an empty folder first (the processes' idle RSS and startup faults), then each size
  const emptyDir = path.join(opts.workDir, 'photos-empty')
  await mkdir(emptyDir, { recursive: true })
  const dataDir = path.join(opts.workDir, 'photos-index-data')
  const env = { UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '6' }
  const empty = await npmIndex(emptyDir, dataDir, env)
  const runs = new Map<string, IndexRun>()
  const allocators: Array<[string, Record<string, string>]> = [
    ['glibc malloc', env],
    ['glibc malloc, INDEX_JOB_NICE=0', { ...env, INDEX_JOB_NICE: '0' }],
    ...(existsSync(JEMALLOC) ? [['jemalloc (LD_PRELOAD)', { ...env, LD_PRELOAD: JEMALLOC }] as [string, Record<string, string>]] : [])
  ]
  for (const [alloc, e] of allocators) {
    for (const mp of SIZES) {
      log(`photos: npm run index, ${mp} MP, ${alloc}`)
      runs.set(`${mp}/${alloc}`, await npmIndex(path.join(photosDir, `${mp}mp`), dataDir, e))
    }
  }
  // the same job over half the photos: the difference is the steady rate, the rest the fixed cost. Each
  // of the two runs twice, alternated, and the faster counts: other work here only ever slows a run down
  const halves = new Map<number, IndexRun>()
  const faster = (a: IndexRun, b: IndexRun): IndexRun => b.jobS < a.jobS ? b : a
  for (const mp of SIZES) {
    log(`photos: npm run index, ${mp} MP, half the photos, then all again, then half again`)
    const half = await npmIndex(path.join(photosDir, `${mp}mp`, 'a'), dataDir, env)
    runs.set(`${mp}/glibc malloc`, faster(runs.get(`${mp}/glibc malloc`)!, await npmIndex(path.join(photosDir, `${mp}mp`), dataDir, env)))
    halves.set(mp, faster(half, await npmIndex(path.join(photosDir, `${mp}mp`, 'a'), dataDir, env)))
  }
  log('photos: a directory job in the server, then image queries')
  const query = bytes.get(24)![0]!
  const server = await serverRun(opts, photosDir, '24mp', '12mp', query)

  const idleMain = empty.main?.hwmMiB ?? Number.NaN
  const perPhotoFaults = (r: IndexRun): number | null => r.faults === null || empty.faults === null ? null : (r.faults - empty.faults) / r.indexed
  const rows: Cell[][] = [...runs].map(([key, r]) => {
    const [mp, alloc] = key.split('/') as [string, string]
    const c = ceiling.get(Number(mp))!.reduced
    return [`${mp} MP`, alloc, r.indexed, fmt(r.ips), fmt(c), fmt(ratio(r.ips, c)), fmt(r.main?.hwmMiB), fmt((r.main?.hwmMiB ?? Number.NaN) - idleMain), fmt(r.child?.hwmMiB), fmt((r.child?.hwmMiB ?? Number.NaN) - idleChild), fmt(perPhotoFaults(r))]
  })
  const glibc = SIZES.map((mp) => runs.get(`${mp}/glibc malloc`)!)
  const worstIngest = Math.min(...SIZES.map((mp, i) => ratio(glibc[i]!.ips, ceiling.get(mp)!.reduced)))
  const worstRss = Math.max(...glibc.flatMap((r) => [(r.main?.hwmMiB ?? Number.NaN) - idleMain, (r.child?.hwmMiB ?? Number.NaN) - idleChild]))
  // steady rate: the photos the whole run has beyond the half run, over the time it takes beyond it; fixed cost: the rest of the half run's time
  const split = new Map(SIZES.map((mp, i) => {
    const [all, half] = [glibc[i]!, halves.get(mp)!]
    const steady = (all.indexed - half.indexed) / (all.jobS - half.jobS)
    return [mp, { steady, fixedS: half.jobS - half.indexed / steady, half }]
  }))
  const c24 = ceiling.get(24)!.reduced
  const c12 = ceiling.get(12)!.reduced
  const jobX = ratio(server.ips, c24)
  const q = median(server.queryMs)
  const d = median(server.decodeMs)
  const targets: Target[] = [
    { section: 'photos', name: 'npm run index, whole job ÷ prepareImage ceiling (worst size)', goal: `≥ ${INGEST_TARGET}`, measured: worstIngest, unit: '×', met: worstIngest >= INGEST_TARGET, detail: SIZES.map((mp, i) => `${mp} MP: ${fmt(glibc[i]!.ips)} vs ${fmt(ceiling.get(mp)!.reduced)} images/s (steady ${fmt(split.get(mp)!.steady)}, fixed ${fmt(split.get(mp)!.fixedS)} s)`).join('; ') },
    { section: 'photos', name: 'directory job in the server, whole job ÷ prepareImage ceiling (24 MP)', goal: `≥ ${INGEST_TARGET}`, measured: jobX, unit: '×', met: jobX >= INGEST_TARGET, detail: `${fmt(server.ips)} vs ${fmt(c24)} images/s (${server.done} photos; the background process starts with the job)` },
    { section: 'photos', name: 'peak RSS above idle, ingest processes of npm run index (worst)', goal: `≤ ${RSS_TARGET_MIB} MiB`, measured: worstRss, unit: 'MiB', met: worstRss <= RSS_TARGET_MIB, detail: `idle: CLI ${fmt(idleMain)} MiB, background child ${fmt(idleChild)} MiB` },
    { section: 'photos', name: 'image query with a 24 MP JPEG ÷ its full-size decode', goal: `≤ ${QUERY_TARGET}×`, measured: ratio(q, d), unit: '×', met: ratio(q, d) <= QUERY_TARGET, detail: `median ${fmt(q)} ms vs ${fmt(d)} ms (${QUERY_REPEATS} each, alternated)` }
  ]
  const sizes = [...bytes].map(([mp, bs]) => `${bs.length} at ${mp} MP (${fmt(bs.reduce((s, b) => s + b.length, 0) / bs.length / 1e6)} MB each)`).join(', ')
  return {
    id: 'photos',
    title: 'Photo-sized ingest: 12 and 24 MP JPEGs',
    machine,
    dataset: `${sizes}: the ${all.length / SIZES.length / VARIANTS.length} photographs among plasma-workspace-wallpapers (GPL-2+), as is, mirrored, upside down and both, cropped to 3:2, enlarged, light grain, JPEG q90 4:2:0`,
    params: { model: path.basename(opts.modelDir), 'decode lanes (prepareImage at once)': lanes, UV_THREADPOOL_SIZE: env.UV_THREADPOOL_SIZE, 'decode margin': `${DECODE_MARGIN}× the larger output`, 'page faults from': existsSync(TIME) ? '/usr/bin/time -v (whole tree, minus an empty-folder run)' : 'not measured (no /usr/bin/time)' },
    tables: [
      {
        title: 'Fidelity and the decode ceiling (this process)',
        columns: ['photos', 'prepareImage images/s (reduced decode): the ceiling', 'prepareImage images/s (full-size decode)', 'speed-up', `prepareImage + ${PREVIEW.size} px preview images/s (what ingest does)`],
        rows: [...ceiling].map(([mp, c]) => [`${mp} MP`, fmt(c.reduced), fmt(c.full), fmt(ratio(c.reduced, c.full)), fmt(c.preview)]),
        note: `Embedding cosine, reduced decode vs full-size decode, same photo (${cosines.length} photos, ${path.basename(opts.modelDir)}): min ${fmt(Math.min(...cosines), 5)}, median ${fmt(median(cosines), 5)}.`
      },
      {
        title: 'npm run index (fresh DATA_DIR each run; images/s from the job\'s own start and end; glibc malloc: the faster of two runs)',
        columns: ['photos', 'run', 'indexed', 'images/s', 'ceiling', '÷ ceiling', 'CLI peak MiB', 'above idle', 'child peak MiB', 'above idle', 'minor faults/photo'],
        rows
      },
      {
        title: 'npm run index: fixed cost and steady rate (glibc malloc; runs over half the photos beside the whole runs; of two runs each, the faster)',
        columns: ['photos', 'half run: photos', 'half run: job s', 'whole run: photos', 'whole run: job s', 'steady images/s', 'steady ÷ ceiling', 'fixed cost s', 'whole job ÷ ceiling'],
        rows: SIZES.map((mp, i) => {
          const { steady, fixedS, half } = split.get(mp)!
          const c = ceiling.get(mp)!.reduced
          return [`${mp} MP`, half.indexed, fmt(half.jobS), glibc[i]!.indexed, fmt(glibc[i]!.jobS), fmt(steady), fmt(ratio(steady, c)), fmt(fixedS), fmt(ratio(glibc[i]!.ips, c))]
        }),
        note: 'Steady images/s = (whole − half photos) ÷ (whole − half job s); fixed cost = half job s − half photos ÷ steady: what a job pays once (the background process\'s start and model load where the job\'s own listing, reads and hashing do not hide it, the first photos\' transfer, the last commit). Job s is the job\'s own createdAt → updatedAt, as npm run index prints it.'
      },
      {
        title: 'Server: directory job over the 24 MP photos, then image queries',
        columns: ['what', 'value'],
        rows: [
          [`job images/s (${server.done} photos at 24 MP; the job starts the background process)`, fmt(server.ips)],
          [`a second job, ${server.warmDone} photos at 12 MP, background process already running: images/s (÷ the 12 MP ceiling)`, `${fmt(server.warmIps)} (${fmt(ratio(server.warmIps, c12))}×)`],
          ['server RSS at /ready, MiB', fmt(server.serverIdle)], ['server peak RSS, MiB', fmt(server.serverPeak)], ['background child peak RSS, MiB', fmt(server.childPeak)],
          ['image query p50, ms (POST /v1/search, multipart, 24 MP JPEG)', fmt(q)], ['full-size decode of the same JPEG p50, ms', fmt(d)]
        ]
      }
    ],
    targets,
    notes: [
      `Idle RSS: the CLI process on an empty folder (model and index loaded: ${fmt(idleMain)} MiB peak), and a background ingest process that has encoded one small image (${fmt(idleChild)} MiB). Empty-folder run: ${fmt(empty.faults)} minor faults, subtracted from each run before dividing by its photos.`,
      `The targets compare the whole job (first request to last commit), start costs included. A job starts the background ingest process as it starts, so that its start overlaps the listing, reads and hashing of the first batch: ${fmt(childStartMs)} ms in this run for process start, model load and one small image (measured alone). The fixed cost and steady rate of npm run index are measured from two runs (table above), not estimated.`,
      `Ingest also makes the ${PREVIEW.size} px preview kept for re-embedding (PREVIEW_SIZE) from the same decode; the ceiling does not (its last column shows prepareImage with it).`,
      'The ceiling is prepareImage alone over the same files, as many at a time as the ingest process decodes (decodeConcurrency), in this process at normal priority; the ingest child runs at INDEX_JOB_NICE (19), so on a machine others keep busy it gets less CPU than the ceiling did.'
    ],
    wallMs: performance.now() - started,
    raw: { cosines, ceiling: Object.fromEntries(ceiling), runs: Object.fromEntries(runs), halves: Object.fromEntries(halves), split: Object.fromEntries(split), empty, idleChild, server }
  }
}
