/**
 * Environment → typed configuration, validated once at startup.
 * Works without Fastify: the server, the CLI and the tests all call `loadConfig`.
 * Every problem names the variable; all problems are reported together.
 */
import { existsSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { DEFAULT_HNSW, DEFAULT_INDEX_BATCH_SIZE, DEFAULT_INDEX_JOB_NICE, DEFAULT_INDEX_RETRY_AFTER_MS } from '../../core/limits.js'
import { withoutPassword } from '../../core/secrets.js'
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_TIMEOUTS } from '../../backends/postgres/postgres-options.js'
import type { HttpConfig } from '../../http/http-config.js'
import { EXECUTION_PROVIDER_SETTINGS, type PreviewFormat } from '../../ml/types.js'
import type { ConnectionTimeouts, PgVectorType } from '../../backends/postgres/postgres-options.js'
import { ConfigError, MiB, Reader, type Env } from './env-reader.js'

export { ConfigError }

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
const LOG_LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** The PostgreSQL backend's settings; present only when DATABASE_URL is set. */
export interface DatabaseConfig {
  /** postgres:// or postgresql:// connection URL */
  url: string
  /** most connections this process opens */
  poolSize: number
  /** how the HNSW index stores vectors: `halfvec` halves its size (an expression index over the `vector` column) */
  vectorType: PgVectorType
  /** every connection's timeouts (PG_STATEMENT_TIMEOUT, PG_LOCK_TIMEOUT, ...; defaults DEFAULT_TIMEOUTS) */
  timeouts?: ConnectionTimeouts
}

/** PostgreSQL only: the fault settings of cluster index jobs (README "Cluster mode: faults") */
export interface ClusterJobsConfig {
  /** INDEX_BATCH_TIMEOUT: a batch still running after this goes back to the queue, ms */
  batchTimeoutMs: number
  /** INDEX_RETRY_LIMIT: retries of a batch or plan before its job fails */
  retryLimit: number
  /** INDEX_RETRY_DELAY: the first retry's delay; each next one about doubles, ms */
  retryDelayMs: number
  /** INDEX_QUEUE_RETENTION: how long a queued message is kept before pg-boss drops it, ms */
  queueRetentionMs: number
  /** INDEX_FAILED_KEEP: how long a failed upload job keeps its staged files (so it can be resumed), ms */
  failedKeepMs: number
  /** STAGING_MAX_BYTES: the most upload bytes staged at once; more answers 507 */
  stagingMaxBytes: number
}

/** Every setting: what the HTTP layer reads (HttpConfig: keys, limits, CORS, rate limit) and the rest. */
export interface Config extends HttpConfig {
  port: number
  host: string
  /** absolute path of the model folder */
  modelDir: string
  /** absolute path of the runtime data folder (SQLite, HNSW snapshots, thumbnails) */
  dataDir: string
  /** absolute path under which index jobs may read files */
  importDir: string
  encoderWorkers: number
  encoderThreads: number
  /** nice value (0–19) of the process that decodes images for index jobs */
  indexJobNice: number
  /** largest decoded image, pixels */
  maxImagePixels: number
  hnsw: { M: number, efConstruction: number, efSearch: number }
  /** PostgreSQL + pgvector when DATABASE_URL is set; undefined = the embedded SQLite backend in DATA_DIR */
  database: DatabaseConfig | undefined
  /** whether `npm start` also processes index work (INDEX_WORKER; off needs DATABASE_URL: workers run it) */
  indexWorker: boolean
  /** `npm run worker` answers /health, /ready and /metrics on this port; undefined = no HTTP */
  workerPort: number | undefined
  /** WORKER_HOST: the address the worker's port binds (default 127.0.0.1: it has no auth) */
  workerHost: string
  /** images per index-job batch: the unit a worker claims, encodes and commits at once */
  indexBatchSize: number
  /** cluster mode: a batch whose worker died is retried by another worker within this time, ms (a model switch's batch too: its claim lapses after half of it) */
  indexRetryAfterMs: number
  /** cluster mode: how index jobs ride out faults (README "What a job does on each fault") */
  clusterJobs: ClusterJobsConfig
  /** HNSW snapshot after this many inserts */
  checkpointEvery: number
  /** where backups are written (BACKUP_DIR; default DATA_DIR/backups) */
  backupDir: string
  /** a scheduled backup every this many ms (BACKUP_EVERY); undefined = off */
  backupEveryMs: number | undefined
  /** scheduled backups kept (BACKUP_KEEP) */
  backupKeep: number
  logLevel: LogLevel
  /** folder of demo images offered by the page; undefined = disabled */
  demoPoolDir: string | undefined
  /** MODELS_DIR: a model switch may only name folders under it */
  modelsDir: string
  /** PREVIEW_SIZE (shorter side, px; 0 = none) and PREVIEW_FORMAT of the preview kept for re-embedding */
  preview: { size: number, format: PreviewFormat }
  /** KEEP_ORIGINALS: keep the bytes of no image, of uploads without a source file, or of all */
  keepOriginals: 'none' | 'uploads' | 'all'
}

/**
 * Validates the environment once and returns the typed configuration.
 * Relative paths are resolved against `cwd`. Throws a `ConfigError` naming every bad variable.
 * Has no side effects: `ensureDirs` creates DATA_DIR and IMPORT_DIR.
 */
export function loadConfig (env: Env = process.env, cwd: string = process.cwd()): Config {
  const r = new Reader(env)
  const abs = (p: string): string => path.resolve(cwd, p)

  const apiKey = r.raw('API_KEY')
  if (apiKey !== undefined && apiKey.length < 16) r.problems.push('API_KEY must be at least 16 characters long')

  const cors = r.raw('CORS_ORIGIN')
  const corsOrigin = cors === undefined
    ? undefined
    : cors === '*' ? true as const : cors.split(',').map((s) => s.trim()).filter((s) => s !== '')
  if (Array.isArray(corsOrigin)) {
    for (const o of corsOrigin) {
      if (!/^https?:\/\/[^/\s]+$/.test(o)) r.problems.push(`CORS_ORIGIN must be * or a comma-separated list of origins like https://example.com, got "${o}"`)
    }
  }

  // DEMO_POOL: unset → the default folder if it exists; empty string → disabled; set → must exist
  let demoPoolDir: string | undefined
  const demoRaw = env.DEMO_POOL
  if (demoRaw === undefined) {
    const dflt = abs('demo/pool')
    demoPoolDir = existsSync(dflt) ? dflt : undefined
  } else if (demoRaw.trim() !== '') {
    demoPoolDir = abs(demoRaw.trim())
    if (!existsSync(demoPoolDir)) r.problems.push(`DEMO_POOL must be an existing folder (or empty to disable), "${demoPoolDir}" does not exist`)
  }

  const databaseUrl = r.raw('DATABASE_URL')
  if (databaseUrl !== undefined && !isPostgresUrl(databaseUrl)) {
    r.problems.push(/^postgres(ql)?:\/\//i.test(databaseUrl)
      ? `DATABASE_URL is not a valid URL: "${withoutPassword(databaseUrl)}" (percent-encode '/', '@', '#' and '?' in the password: '/' is %2F)`
      : `DATABASE_URL must be a postgres:// or postgresql:// URL, got "${withoutPassword(databaseUrl)}"`)
  }
  // read (and so validated) even without DATABASE_URL, so a typo is caught before anyone relies on it
  const poolSize = r.int('DATABASE_POOL_SIZE', 10, 1, 1000)
  const vectorType = r.oneOf('PG_VECTOR_TYPE', 'vector', ['vector', 'halfvec'] as const)

  const indexWorker = r.bool('INDEX_WORKER', true)
  if (!indexWorker && databaseUrl === undefined) {
    r.problems.push('INDEX_WORKER=off needs DATABASE_URL: with the embedded SQLite backend only this process can run index jobs (run `npm run worker` processes against PostgreSQL instead)')
  }
  const workerPortRaw = r.raw('WORKER_PORT')
  // every PostgreSQL connection's timeouts (README "Cluster mode"); 0 turns one off
  const timeouts = {
    statementTimeoutMs: r.duration('PG_STATEMENT_TIMEOUT', DEFAULT_TIMEOUTS.statementTimeoutMs, 0, 86_400_000),
    lockTimeoutMs: r.duration('PG_LOCK_TIMEOUT', DEFAULT_TIMEOUTS.lockTimeoutMs, 0, 86_400_000),
    idleInTransactionTimeoutMs: r.duration('PG_IDLE_IN_TRANSACTION_TIMEOUT', DEFAULT_TIMEOUTS.idleInTransactionTimeoutMs, 0, 86_400_000),
    tcpUserTimeoutMs: r.duration('PG_TCP_USER_TIMEOUT', DEFAULT_TIMEOUTS.tcpUserTimeoutMs, 0, 3_600_000),
    keepAliveIdleMs: r.duration('PG_KEEPALIVE_IDLE', DEFAULT_TIMEOUTS.keepAliveIdleMs, 1000, 7_200_000),
    connectTimeoutMs: r.duration('PG_CONNECT_TIMEOUT', DEFAULT_CONNECT_TIMEOUT_MS, 100, 600_000)
  }

  const maxUploadBytes = r.bytes('MAX_UPLOAD_BYTES', 20 * MiB, 1024, 1024 * MiB)
  const config: Config = {
    port: r.int('PORT', 8080, 0, 65535),
    host: r.string('HOST', '0.0.0.0'),
    modelDir: abs(r.string('MODEL_DIR', 'models/align-mini')),
    dataDir: abs(r.string('DATA_DIR', 'index-data')),
    importDir: abs(r.string('IMPORT_DIR', 'import')),
    executionProvider: r.oneOf('EXECUTION_PROVIDER', 'cpu', EXECUTION_PROVIDER_SETTINGS),
    encoderWorkers: r.int('ENCODER_WORKERS', 1, 1, 64),
    encoderThreads: r.int('ENCODER_THREADS', 1, 1, 256),
    indexJobNice: r.int('INDEX_JOB_NICE', DEFAULT_INDEX_JOB_NICE, 0, 19),
    apiKey,
    apiKeyReads: r.bool('API_KEY_READS', false),
    rateLimitMax: r.int('RATE_LIMIT_MAX', 0, 0, 1_000_000),
    rateLimitWindowMs: r.duration('RATE_LIMIT_WINDOW', 60_000, 1000, 86_400_000),
    corsOrigin,
    maxUploadBytes,
    maxFiles: r.int('MAX_FILES', 64, 1, 10_000),
    maxJobFiles: r.int('MAX_JOB_FILES', 1000, 1, 1_000_000),
    maxUploadTotalBytes: r.bytes('MAX_UPLOAD_TOTAL_BYTES', 1024 * MiB, 1024, 64 * 1024 * MiB),
    maxImagePixels: r.number('MAX_IMAGE_PIXELS', 1e8, 1, 1e10),
    maxBodyBytes: r.bytes('MAX_BODY_BYTES', 32 * MiB, 1024, 1024 * MiB),
    hnsw: {
      M: r.int('HNSW_M', DEFAULT_HNSW.M, 2, 128),
      efConstruction: r.int('HNSW_EF_CONSTRUCTION', DEFAULT_HNSW.efConstruction, 1, 10_000),
      efSearch: r.int('HNSW_EF_SEARCH', DEFAULT_HNSW.efSearch, 1, 10_000)
    },
    database: databaseUrl === undefined ? undefined : { url: databaseUrl, poolSize, vectorType, timeouts },
    indexWorker,
    workerPort: workerPortRaw === undefined ? undefined : r.int('WORKER_PORT', 0, 0, 65535),
    workerHost: r.string('WORKER_HOST', '127.0.0.1'),
    indexBatchSize: r.int('INDEX_BATCH_SIZE', DEFAULT_INDEX_BATCH_SIZE, 1, 1024),
    indexRetryAfterMs: r.duration('INDEX_RETRY_AFTER', DEFAULT_INDEX_RETRY_AFTER_MS, 5000, 3_600_000),
    clusterJobs: {
      batchTimeoutMs: r.duration('INDEX_BATCH_TIMEOUT', 10 * 60_000, 1000, 86_400_000),
      retryLimit: r.int('INDEX_RETRY_LIMIT', 8, 0, 100),
      retryDelayMs: r.duration('INDEX_RETRY_DELAY', 2000, 1000, 3_600_000),
      queueRetentionMs: r.duration('INDEX_QUEUE_RETENTION', 90 * 86_400_000, 60_000, 3650 * 86_400_000),
      failedKeepMs: r.duration('INDEX_FAILED_KEEP', 7 * 86_400_000, 0, 3650 * 86_400_000),
      stagingMaxBytes: r.bytes('STAGING_MAX_BYTES', 8 * 1024 * MiB, MiB, 1024 * 1024 * MiB)
    },
    checkpointEvery: r.int('CHECKPOINT_EVERY', 1000, 1, 10_000_000),
    backupDir: abs(r.string('BACKUP_DIR', path.join(r.string('DATA_DIR', 'index-data'), 'backups'))),
    backupEveryMs: r.raw('BACKUP_EVERY') === undefined ? undefined : r.duration('BACKUP_EVERY', 0, 60_000, 366 * 86_400_000),
    backupKeep: r.int('BACKUP_KEEP', 7, 1, 10_000),
    logLevel: r.oneOf('LOG_LEVEL', 'info', LOG_LEVELS),
    demoPoolDir,
    modelsDir: abs(r.string('MODELS_DIR', 'models')),
    preview: { size: r.int('PREVIEW_SIZE', 320, 0, 4096), format: r.oneOf('PREVIEW_FORMAT', 'auto', ['auto', 'webp', 'jpeg'] as const) },
    keepOriginals: r.oneOf('KEEP_ORIGINALS', 'none', ['none', 'uploads', 'all'] as const)
  }
  if (config.host.length === 0) r.problems.push('HOST must not be empty')
  if (config.workerHost.length === 0) r.problems.push('WORKER_HOST must not be empty')
  if (r.problems.length > 0) throw new ConfigError(r.problems)
  return config
}

function isPostgresUrl (raw: string): boolean {
  try {
    const u = new URL(raw)
    return (u.protocol === 'postgres:' || u.protocol === 'postgresql:') && (u.hostname !== '' || u.searchParams.has('host'))
  } catch {
    return false
  }
}

/** Creates IMPORT_DIR (and DATA_DIR) when missing; called by the server and the CLI, not by loadConfig. */
export function ensureDirs (config: Config): void {
  mkdirSync(config.importDir, { recursive: true })
  mkdirSync(config.dataDir, { recursive: true })
}
