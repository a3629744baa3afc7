/**
 * Section "cluster": the same directory job (files on disk → searchable) run four ways in one run,
 * each on fresh storage, each process started and ready before the job is posted:
 *   - embedded, SQLite: `npm start`, the job in the server's own process (today's default);
 *   - embedded, PostgreSQL: `npm start` with DATABASE_URL, the server working the shared queue itself;
 *   - 1 worker: an API with INDEX_WORKER=off and one `npm run worker`;
 *   - 2 workers: the same with two `npm run worker`.
 * Rounds alternate the four, and each way's best round counts (the machine is shared). CPU is
 * counted over every process involved, PostgreSQL's included. Then the queue's own cost per batch:
 * messages sent, claimed and completed with no work in between.
 */
import { mkdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import pg from 'pg'
import { pino } from 'pino'
import { QUEUES, type BatchMessage } from '../src/backends/index-queue.js'
import { PgIndexQueue } from '../src/backends/postgres/queue/pg-index-queue.js'
import { startTestPostgres, type TestPostgres } from '../scripts/lib/postgres-server.js'
import { machineInfo } from './lib/machine.js'
import { startServer, waitFor, type ServerHandle } from './lib/server-process.js'
import { fmt, median, ratio } from './lib/stats.js'
import { parentOf, treeCpuMs } from './lib/tree-cpu.js'
import type { BenchOptions, Cell, SectionResult } from './lib/types.js'
import { listImages, makeVariants } from './lib/variants.js'

const TARGET = 0.8
const ROUNDS = 4
const BATCH = 32
const QUEUE_MESSAGES = 400
const JOB_TIMEOUT_MS = 30 * 60_000

type Way = 'embedded, SQLite' | 'embedded, PostgreSQL' | '1 worker' | '2 workers'
const WAYS: Way[] = ['embedded, SQLite', 'embedded, PostgreSQL', '1 worker', '2 workers']

interface Run { way: Way, images: number, ms: number, cpuMs: number, batches: number }

async function postgresPid (url: string): Promise<number | undefined> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    const r = await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
    return parentOf(r.rows[0]!.pid)
  } finally {
    await c.end()
  }
}

async function ready (h: ServerHandle): Promise<void> {
  await waitFor(`${h.url}/ready`, async () => {
    if (h.proc.exitCode !== null) throw new Error(`a process exited (code ${h.proc.exitCode}) before it was ready`)
    const res = await fetch(`${h.url}/ready`)
    return res.ok ? true : undefined
  }, 180_000)
}

/** Starts the processes of `way`, posts the job, and times it from the POST until the job is done. */
async function runWay (way: Way, opts: BenchOptions, db: TestPostgres, postmaster: number | undefined, importDir: string, jobDir: string, round: number): Promise<Run> {
  const dataDir = path.join(opts.workDir, 'cluster-data', `${round}-${way.replace(/[^a-z0-9]+/gi, '-')}`)
  await rm(dataDir, { recursive: true, force: true })
  await mkdir(dataDir, { recursive: true })
  const url = way === 'embedded, SQLite' ? '' : await db.newDatabase()
  const env = {
    // nice 0 for every way: the job's background process then gets its fair share of a machine that others share too
    MODEL_DIR: opts.modelDir,
    IMPORT_DIR: importDir,
    DEMO_POOL: '',
    LOG_LEVEL: 'warn',
    UV_THREADPOOL_SIZE: '6',
    INDEX_JOB_NICE: '0',
    INDEX_BATCH_SIZE: String(BATCH),
    HNSW_M: String(opts.M),
    HNSW_EF_CONSTRUCTION: String(opts.efConstruction),
    DATABASE_URL: url
  }
  const logs = (name: string): string => path.join(dataDir, `${name}.log`)
  const procs: ServerHandle[] = []
  try {
    const api = await startServer({ ...env, DATA_DIR: path.join(dataDir, 'api'), INDEX_WORKER: way.startsWith('embedded') ? 'on' : 'off' }, logs('api'))
    procs.push(api)
    // the API first: it migrates the empty database, and the workers find it done
    await ready(api)
    const workers = way === '1 worker' ? 1 : way === '2 workers' ? 2 : 0
    for (let i = 0; i < workers; i++) {
      procs.push(await startServer({ ...env, DATA_DIR: path.join(dataDir, `worker-${i}`) }, logs(`worker-${i}`), [], { entry: 'dist/main/worker.js', portVar: 'WORKER_PORT' }))
    }
    await Promise.all(procs.map(ready))
    const roots = [process.pid, ...(postmaster === undefined || url === '' ? [] : [postmaster])]
    const cpu0 = treeCpuMs(roots)
    const t0 = performance.now()
    const res = await fetch(`${api.url}/v1/index-jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ directory: jobDir }) })
    if (res.status !== 202) throw new Error(`POST /v1/index-jobs answered ${res.status}: ${await res.text()}`)
    const { jobId } = await res.json() as { jobId: string }
    const view = await waitFor('the job to finish', async () => {
      const v = await (await fetch(`${api.url}/v1/index-jobs/${jobId}`)).json() as { status: string, done: number, failed: number, total: number }
      return ['done', 'failed', 'cancelled'].includes(v.status) ? v : undefined
    }, JOB_TIMEOUT_MS, 100)
    const ms = performance.now() - t0
    const cpuMs = treeCpuMs(roots) - cpu0
    if (view.status !== 'done') throw new Error(`the ${way} job ended ${view.status}: ${JSON.stringify(view)}`)
    return { way, images: view.done - view.failed, ms, cpuMs, batches: Math.ceil(view.total / BATCH) }
  } finally {
    await Promise.all(procs.map(async (p) => await p.stop()))
  }
}

/** The queue alone: ms per batch message sent, claimed and completed, with nothing done in between. */
async function queueOverhead (url: string): Promise<{ sendMs: number, roundTripMs: number, emptyFetchMs: number }> {
  const queue = await PgIndexQueue.open({ databaseUrl: url, retryAfterMs: 30_000, logger: pino({ level: 'silent' }) })
  try {
    const batches: BatchMessage[] = Array.from({ length: QUEUE_MESSAGES }, (_, n) => ({ jobId: 'bench', n, first: n * BATCH, last: n * BATCH + BATCH - 1 }))
    const t0 = performance.now()
    await queue.sendBatches(batches)
    const sendMs = (performance.now() - t0) / QUEUE_MESSAGES
    const t1 = performance.now()
    let n = 0
    for (;;) {
      const msg = await queue.fetch(QUEUES.batch)
      if (msg === undefined) break
      await queue.heartbeat(QUEUES.batch, [msg.id])
      await queue.complete(QUEUES.batch, msg.id)
      n++
    }
    const roundTripMs = (performance.now() - t1) / Math.max(1, n)
    const t2 = performance.now()
    for (let i = 0; i < 50; i++) await queue.fetch(QUEUES.batch)
    return { sendMs, roundTripMs, emptyFetchMs: (performance.now() - t2) / 50 }
  } finally {
    await queue.close()
  }
}

export async function clusterSection (opts: BenchOptions, log: (m: string) => void): Promise<SectionResult> {
  const started = performance.now()
  const machine = machineInfo()
  const skipped = (reason: string): SectionResult => ({ id: 'cluster', title: 'Cluster: index workers against the embedded job', machine, skipped: reason, dataset: '', params: {}, tables: [], targets: [{ section: 'cluster', name: '1 worker ÷ embedded job, images/s', goal: `≥ ${TARGET}`, measured: null, unit: '×', met: null }], notes: [], wallMs: performance.now() - started })
  const db = await startTestPostgres({ engine: 'server' })
  if (!('url' in db)) return skipped(`no PostgreSQL server: ${db.skip}`)
  try {
    const importDir = path.join(opts.workDir, 'import')
    const jobDir = 'service-job' // the files of the ingest and service sections
    const variants = await makeVariants(opts.poolDir, path.join(importDir, jobDir), opts.importN, 1)
    const files = await listImages(path.join(importDir, jobDir))
    log(`cluster: ${files.length} files ${variants.cached ? '(reused)' : `made in ${fmt(variants.ms / 1000)} s`}; PostgreSQL: ${db.kind}`)
    const postmaster = await postgresPid(db.url)
    const runs: Run[] = []
    for (let round = 0; round < ROUNDS; round++) {
      for (const way of WAYS) {
        const r = await runWay(way, opts, db, postmaster, importDir, jobDir, round)
        log(`cluster: round ${round + 1}, ${way}: ${fmt(r.images / (r.ms / 1000))} images/s, ${fmt(r.cpuMs / r.images)} ms CPU per image`)
        runs.push(r)
      }
    }
    const best = new Map<Way, Run>()
    for (const r of runs) {
      const b = best.get(r.way)
      if (b === undefined || r.ms < b.ms) best.set(r.way, r)
    }
    const ips = (w: Way): number => { const r = best.get(w)!; return r.images / (r.ms / 1000) }
    const base = ips('embedded, SQLite')
    const one = ratio(ips('1 worker'), base)
    const q = await queueOverhead(await db.newDatabase())
    const worker = best.get('1 worker')!
    const batchMs = worker.ms / worker.batches
    const rows: Cell[][] = WAYS.map((w) => {
      const r = best.get(w)!
      const all = runs.filter((x) => x.way === w).map((x) => x.images / (x.ms / 1000))
      return [w, fmt(ips(w)), fmt(median(all)), fmt(ratio(ips(w), base)), fmt(r.cpuMs / r.images), fmt(r.cpuMs / r.ms)]
    })
    return {
      id: 'cluster',
      title: 'Cluster: index workers against the embedded job',
      machine,
      dataset: `${files.length} variants of demo pool images (half PNG 128 px, half JPEG 256 px), distinct hashes, one directory job, fresh storage for every run`,
      params: { rounds: ROUNDS, 'batch size': BATCH, 'encoder workers': 1, M: opts.M, efConstruction: opts.efConstruction, postgres: db.kind, model: path.basename(opts.modelDir) },
      tables: [
        {
          title: 'The same job, four ways (best of the rounds)',
          columns: ['way', 'images/s (best)', 'images/s (median)', '÷ embedded, SQLite', 'CPU ms per image (all processes)', 'cores busy'],
          rows,
          note: `End to end = from POST /v1/index-jobs until GET /v1/index-jobs/:id says done. CPU is user + system time of every process involved: the API, the workers, their background ingest processes and, for PostgreSQL, the server with its backends (/proc). ${machine.cores} cores in all.`
        },
        {
          title: `The queue alone (${QUEUE_MESSAGES} batch messages, one consumer, nothing done in between)`,
          columns: ['step', 'ms per batch', '% of a batch'],
          rows: [
            ['send (planning: one INSERT per 1000 messages)', fmt(q.sendMs), fmt(q.sendMs / batchMs * 100)],
            ['claim + heartbeat + complete', fmt(q.roundTripMs), fmt(q.roundTripMs / batchMs * 100)],
            ['an idle worker asking an empty queue', fmt(q.emptyFetchMs), ''],
            [`a batch of ${BATCH} in the 1-worker run (wall time ÷ batches)`, fmt(batchMs), '100']
          ]
        }
      ],
      targets: [{ section: 'cluster', name: '1 worker ÷ embedded job, images/s', goal: `≥ ${TARGET}`, measured: one, unit: '×', met: one >= TARGET, detail: `${fmt(ips('1 worker'))} vs ${fmt(base)} images/s` }],
      notes: [
        `All processes share this machine's ${machine.cores} cores, PostgreSQL included, so 2 workers cannot be faster than the cores allow: on separate machines each worker brings its own cores (or GPU), and the database's share per image (commit, HNSW insert) is what the primary must keep up with.`,
        `The load average was ${machine.load1} when the section started: other processes shared the ${machine.cores} cores. Every way runs its background ingest process at INDEX_JOB_NICE=0 here (the default, 19, yields to searches), so each gets a fair share of the contended machine; two workers bring two such processes, which is one reason the 2-worker run can beat the embedded job on a shared machine. Rounds alternate the four ways so that each meets similar contention; the best round of each counts, and the medians are shown beside it (1 worker ÷ embedded SQLite by medians: ${fmt(ratio(median(runs.filter((x) => x.way === '1 worker').map((x) => x.images / (x.ms / 1000))), median(runs.filter((x) => x.way === 'embedded, SQLite').map((x) => x.images / (x.ms / 1000)))))}).`,
        `Where the workers' extra CPU per image goes: PostgreSQL inserts each vector into pgvector's HNSW graph (ef_construction ${opts.efConstruction}) inside the commit, which costs more CPU than hnswlib's insert in the embedded process (bench/scaling/report.md: ~333 inserts/s per core at 256-d), and the rows travel to another process. On a CPU-bound machine that difference is the gap between the two.`,
        `The queue costs ${fmt(q.sendMs + q.roundTripMs)} ms per batch of ${BATCH} (${fmt((q.sendMs + q.roundTripMs) / batchMs * 100)}% of a batch here); a worker holds 2 batches at once, so it claims the next while the current one encodes.`
      ],
      wallMs: performance.now() - started,
      raw: { runs, queue: q, batchMs }
    }
  } finally {
    await db.stop()
  }
}
