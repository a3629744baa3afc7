/**
 * A cluster on this machine for the multi-process tests: API processes (`dist/main/server.js` with
 * INDEX_WORKER=off) and index workers (`dist/main/worker.js`) on one PostgreSQL, reading one IMPORT_DIR
 * (the "shared mount"), with the tiny test model.
 */
import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import pg from 'pg'
import { ENTRIES, startServer, type RunningServer } from '../../helpers/spawn-server.js'
import { Api, httpTransport, sleep } from '../../reliability/support/api.js'
import { distinctImage } from '../../reliability/support/images.js'
import { MODEL_DIR, type Dirs } from '../../reliability/support/servers.js'

export interface ClusterSettings {
  databaseUrl: string
  dirs: Dirs
  /** INDEX_RETRY_AFTER, ms */
  retryAfterMs: number
  /** INDEX_BATCH_SIZE */
  batchSize: number
  /** more settings for every process (e.g. the PG_* timeouts) */
  env?: Record<string, string>
}

export interface ApiProcess { server: RunningServer, api: Api }
export interface WorkerProcess { server: RunningServer, name: string }

function commonEnv (s: ClusterSettings, dataDir: string): Record<string, string> {
  mkdirSync(dataDir, { recursive: true })
  return {
    MODEL_DIR,
    DATABASE_URL: s.databaseUrl,
    // four processes share a test server of max_connections=50: each pool stays small
    DATABASE_POOL_SIZE: '4',
    IMPORT_DIR: s.dirs.importDir,
    DATA_DIR: dataDir,
    DEMO_POOL: '',
    INDEX_BATCH_SIZE: String(s.batchSize),
    INDEX_RETRY_AFTER: `${s.retryAfterMs}ms`,
    API_KEY: '',
    API_KEY_READS: '',
    RATE_LIMIT_MAX: '',
    CORS_ORIGIN: '',
    LOG_LEVEL: 'warn',
    ...s.env
  }
}

/** An API replica: serves the API, leaves index work to the workers. */
export async function startApi (s: ClusterSettings, name: string): Promise<ApiProcess> {
  const server = await startServer({ ...commonEnv(s, path.join(s.dirs.dataDir, name)), INDEX_WORKER: 'off' },
    { timeoutMs: 120_000, verbose: process.env.CLUSTER_VERBOSE === '1' })
  return { server, api: new Api(httpTransport(server.url)) }
}

/** An index worker; its debug log names every batch it starts and commits. */
export async function startWorker (s: ClusterSettings, name: string, env: Record<string, string> = {}): Promise<WorkerProcess> {
  const server = await startServer({ ...commonEnv(s, path.join(s.dirs.dataDir, name)), LOG_LEVEL: 'debug', ...env },
    { entry: ENTRIES.worker, portVar: 'WORKER_PORT', timeoutMs: 120_000, verbose: process.env.CLUSTER_VERBOSE === '1' })
  return { server, name }
}

/** The batch messages a worker's log says it started and committed (pg-boss message ids). */
export function batchesIn (logs: string): { started: string[], committed: string[] } {
  const started: string[] = []
  const committed: string[] = []
  for (const line of logs.split('\n')) {
    if (!line.includes('index batch')) continue
    let entry: { msg?: string, message?: string }
    try { entry = JSON.parse(line) } catch { continue }
    if (entry.message === undefined) continue
    if (entry.msg === 'index batch started') started.push(entry.message)
    else if (entry.msg === 'index batch committed') committed.push(entry.message)
  }
  return { started, committed }
}

/** Writes `count` distinct PNGs under IMPORT_DIR/`folder`; resolves with their sha256s. */
export async function writeImages (importDir: string, folder: string, first: number, count: number): Promise<string[]> {
  const dir = path.join(importDir, folder)
  mkdirSync(dir, { recursive: true })
  const shas: string[] = []
  for (let i = first; i < first + count; i++) {
    const bytes = await distinctImage(i, 24)
    writeFileSync(path.join(dir, `img-${String(i).padStart(5, '0')}.png`), bytes)
    shas.push(createHash('sha256').update(bytes).digest('hex'))
  }
  return shas
}

/** Runs `fn` with a connection to the cluster's database (for what the API does not show: rows, the queue). */
export async function withDatabase<T> (url: string, fn: (db: pg.Client) => Promise<T>): Promise<T> {
  const db = new pg.Client({ connectionString: url })
  await db.connect()
  try {
    return await fn(db)
  } finally {
    await db.end()
  }
}

/** stored images: all of them, how many distinct hashes, and how many of `shas` */
export async function storedImages (db: pg.Client, shas: string[] = []): Promise<{ rows: number, distinct: number, of: number }> {
  const r = await db.query<{ rows: number, distinct: number, of: number }>(
    'SELECT count(*)::int AS rows, count(DISTINCT sha256)::int AS distinct, count(*) FILTER (WHERE sha256 = ANY($1::text[]))::int AS of FROM images', [shas])
  return r.rows[0]!
}

/**
 * Searches through every API, one request after another each, until `stop`: how many were
 * answered, and each answer that was not 200 ("api-N: status body").
 */
export function searchThroughout (apis: Api[]): { stop: () => Promise<{ answered: number, failures: string[] }> } {
  const state = { running: true }
  let answered = 0
  const failures: string[] = []
  const loops = apis.map(async (api, i) => {
    while (state.running) {
      const res = await api.search({ query: [{ text: 'a red square' }], target: 'images', k: 5 })
      answered++
      if (res.status !== 200) failures.push(`api-${i + 1}: ${res.status} ${res.text}`)
    }
  })
  return {
    stop: async () => {
      state.running = false
      await Promise.all(loops)
      return { answered, failures }
    }
  }
}

/** Kills every process of a cluster test, then its PostgreSQL (own cluster only) and its folders. */
export async function stopCluster (apis: ApiProcess[], worker: WorkerProcess | undefined, db: { stop?: () => Promise<void> }, dirs: Dirs): Promise<void> {
  await Promise.all([...apis.map((p) => p.server), ...(worker === undefined ? [] : [worker.server])].map(async (s) => await s.kill()))
  await db.stop?.()
  dirs.remove()
}

/** Polls `ok` every 50 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function waitUntil (what: string, ok: () => Promise<boolean>, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(50)
  }
}
