/**
 * The shared backend: PostgreSQL is the source of truth and, through pgvector's HNSW index, the
 * vector index too, so any number of processes can serve and write the same pool.
 */
import pg from 'pg'
import { DEFAULT_HNSW } from '../../core/limits.js'
import type { Logger } from '../../core/types.js'
import type { Backend, BackendHealth, BackendIdentity, IndexInfo } from '../ports.js'
import { describeDatabase, pgvectorIndexParams, prepareDatabase } from './migrate.js'
import { PgImages } from './pg-images.js'
import { PgJobs } from './pg-jobs.js'
import { createPool } from './pg-pool.js'
import { PgStaging } from './pg-staging.js'
import { PgTexts } from './pg-texts.js'
import { sessionSettings, type SearchSettings } from './pg-vector-search.js'
import type { PostgresBackendOptions } from './postgres-options.js'
import { compareVersions, ITERATIVE_SCAN_VERSION } from './vector-extension.js'
import { toBackendError } from './pg-errors.js'

/** how long /ready waits for `SELECT 1` before calling the database unreachable */
const HEALTH_TIMEOUT_MS = 2000

export class PostgresBackend implements Backend {
  readonly name = 'postgres' as const
  private lastHealth: BackendHealth = { ok: true }

  constructor (
    readonly pool: pg.Pool,
    readonly images: PgImages,
    readonly texts: PgTexts,
    readonly jobs: PgJobs,
    readonly staging: PgStaging,
    private readonly info: IndexInfo,
    private readonly database: string,
    private readonly logger: Logger | undefined
  ) {}

  async getMeta (key: string): Promise<string | undefined> {
    const r = await this.pool.query<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key])
    return r.rows[0]?.value
  }

  async setMeta (key: string, value: string): Promise<void> {
    await this.pool.query('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value])
  }

  indexInfo (): IndexInfo {
    return { ...this.info }
  }

  /** `SELECT 1` within HEALTH_TIMEOUT_MS; never throws. Logs when the answer changes, not at every probe. */
  async health (): Promise<BackendHealth> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new Error(`no answer within ${HEALTH_TIMEOUT_MS} ms`)) }, HEALTH_TIMEOUT_MS)
    })
    let now: BackendHealth
    try {
      const probe = this.pool.query('SELECT 1')
      probe.catch(() => {}) // settles after the timeout too; its failure is already reported
      await Promise.race([probe, timeout])
      now = { ok: true }
    } catch (err) {
      now = { ok: false, reason: `PostgreSQL at ${this.database} is unreachable: ${(err as Error).message}` }
    } finally {
      clearTimeout(timer)
    }
    if (now.ok !== this.lastHealth.ok) {
      if (now.ok) this.logger?.info({ database: this.database }, 'PostgreSQL is reachable again')
      else this.logger?.error({ database: this.database, reason: now.reason }, 'PostgreSQL is unreachable: not ready until it answers')
    }
    this.lastHealth = now
    return now
  }

  async close (): Promise<void> {
    await this.pool.end()
  }
}

/**
 * Opens the PostgreSQL backend: migrates the database (under an advisory lock, so processes may
 * start together), refuses another model's database with ConflictError (409) and a missing or
 * too old pgvector with VectorExtensionError naming the fix, ensures the HNSW indexes, and opens
 * a pool of `poolSize` connections.
 */
export async function openPostgresBackend (opts: PostgresBackendOptions, identity: BackendIdentity): Promise<PostgresBackend> {
  if (!Number.isInteger(identity.dim) || identity.dim <= 0) throw new RangeError(`dim must be a positive integer, got ${identity.dim}`)
  const hnsw = { ...DEFAULT_HNSW, ...opts.hnsw }
  const vectorType = opts.vectorType ?? 'vector'
  const wanted = pgvectorIndexParams(hnsw.M, hnsw.efConstruction)
  const prepared = await prepareDatabase(opts.databaseUrl, identity, { vectorType, ...wanted }, opts.logger).catch((err: unknown) => { throw toBackendError(err) })
  const iterativeScan = compareVersions(prepared.vectorVersion, ITERATIVE_SCAN_VERSION) >= 0
  if (!iterativeScan) {
    opts.logger?.warn({ pgvector: prepared.vectorVersion },
      `pgvector ${prepared.vectorVersion} has no iterative index scans: filtered searches through the HNSW index stop at ef_search candidates and then read every matching row; upgrade to ${ITERATIVE_SCAN_VERSION}+`)
  }
  const efSearch = Math.min(1000, hnsw.efSearch)
  const settings = (table: 'images' | 'texts'): SearchSettings => ({ table, dim: identity.dim, vectorType, efSearch, iterativeScan, sessionDefaults: true })
  // the plain search's ef_search as a session default: one round trip per search instead of three
  const pool = createPool(opts.databaseUrl, opts.poolSize ?? 10, opts.logger, sessionSettings(efSearch))
  const info: IndexInfo = { kind: `pgvector hnsw (${vectorType})`, M: prepared.index.M, efConstruction: prepared.index.efConstruction, efSearch, capacity: null }
  return new PostgresBackend(pool, new PgImages(pool, settings('images')), new PgTexts(pool, settings('texts')), new PgJobs(pool), new PgStaging(pool), info,
    describeDatabase(opts.databaseUrl), opts.logger)
}
