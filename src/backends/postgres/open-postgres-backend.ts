/**
 * The shared backend: PostgreSQL is the source of truth and, through pgvector's HNSW index, the
 * vector index too, so any number of processes can serve and write the same pool.
 * /ready probes through a connection of its own (a pool of one), so a request pool saturated by
 * slow searches does not make every replica look dead to a load balancer.
 */
import pg from 'pg'
import { DEFAULT_HNSW } from '../../core/limits.js'
import type { Logger } from '../../core/types.js'
import type { Backend, BackendHealth, BackendIdentity, IndexInfo } from '../ports.js'
import { RECORD_REFRESH_MS, readIndexRecord, type IndexRecord } from './index-settings.js'
import { describeDatabase, pgvectorIndexParams, prepareDatabase } from './migrate.js'
import { PgImages } from './pg-images.js'
import { PgJobs } from './pg-jobs.js'
import { PgModelSlots } from './pg-model-slots.js'
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
  private refresh: NodeJS.Timeout | undefined

  constructor (
    readonly pool: pg.Pool,
    /** /ready's own connection */
    private readonly probePool: pg.Pool,
    readonly images: PgImages,
    readonly texts: PgTexts,
    readonly jobs: PgJobs,
    readonly staging: PgStaging,
    private readonly info: IndexInfo,
    private readonly database: string,
    private readonly logger: Logger | undefined,
    /** the model slots (model switches), following the database's record */
    readonly models: PgModelSlots
  ) {}

  /** the job rows as cluster jobs use them (the same PgJobs) */
  get clusterJobs (): PgJobs { return this.jobs }

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

  /**
   * Re-reads the database's index record every `everyMs`, so this process searches through the
   * index a `db:reindex` swapped in (its searches name the indexed expression) before the old
   * index is dropped.
   */
  followIndexRecord (apply: (record: IndexRecord) => void, everyMs = RECORD_REFRESH_MS): void {
    clearInterval(this.refresh)
    this.refresh = setInterval(() => {
      readIndexRecord(this.probePool).then((record) => {
        if (record === undefined || record.vectorType === this.info.vectorType) return
        this.logger?.info({ vectorType: record.vectorType, M: record.M, efConstruction: record.efConstruction }, 'the index record changed (db:reindex): following it')
        apply(record)
        Object.assign(this.info, { kind: `pgvector hnsw (${record.vectorType})`, vectorType: record.vectorType, M: record.M, efConstruction: record.efConstruction })
      }).catch(() => {}) // an unreachable database shows in /ready; the next tick tries again
    }, everyMs)
    this.refresh.unref()
  }

  /** `SELECT 1` within HEALTH_TIMEOUT_MS; never throws. Logs when the answer changes, not at every probe. */
  async health (): Promise<BackendHealth> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new Error(`no answer within ${HEALTH_TIMEOUT_MS} ms`)) }, HEALTH_TIMEOUT_MS)
    })
    let now: BackendHealth
    try {
      const probe = this.probePool.query('SELECT 1')
      probe.catch(() => {}) // settles after the timeout too; its failure is already reported
      await Promise.race([probe, timeout])
      now = { ok: true }
    } catch (err) {
      // the reason reaches clients (/ready): the cause, never the address (the log has it)
      const mapped = toBackendError(err)
      now = { ok: false, reason: `PostgreSQL is unreachable: ${(mapped instanceof Error ? mapped.message : String(mapped)).replace(/^PostgreSQL is unavailable: /, '')}` }
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
    clearInterval(this.refresh)
    await this.models.close()
    await Promise.all([this.pool.end(), this.probePool.end()])
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
  const prepared = await prepareDatabase(opts.databaseUrl, identity, { vectorType, ...wanted }, opts.logger, opts.timeouts).catch((err: unknown) => { throw toBackendError(err) })
  // the database's record, not this process's settings: the searches must name the index that exists
  const record = prepared.index
  const iterativeScan = compareVersions(prepared.vectorVersion, ITERATIVE_SCAN_VERSION) >= 0
  if (!iterativeScan) {
    opts.logger?.warn({ pgvector: prepared.vectorVersion },
      `pgvector ${prepared.vectorVersion} has no iterative index scans: filtered searches through the HNSW index stop at ef_search candidates and then read every matching row; upgrade to ${ITERATIVE_SCAN_VERSION}+`)
  }
  const efSearch = Math.min(1000, hnsw.efSearch)
  const settings = (table: 'images' | 'texts'): SearchSettings => ({ table, dim: identity.dim, vectorType: record.vectorType, efSearch, iterativeScan, sessionDefaults: true })
  // the plain search's ef_search as a session default: one round trip per search instead of three
  const pool = createPool(opts.databaseUrl, { poolSize: opts.poolSize ?? 10, logger: opts.logger, session: sessionSettings(efSearch), timeouts: opts.timeouts })
  const probePool = createPool(opts.databaseUrl, { poolSize: 1, logger: opts.logger, timeouts: opts.timeouts, applicationName: 'align-search ready' })
  const info: IndexInfo = {
    kind: `pgvector hnsw (${record.vectorType})`,
    vectorType: record.vectorType,
    M: record.M,
    efConstruction: record.efConstruction,
    efSearch,
    capacity: null,
    ...(prepared.differences.length > 0 ? { settingsIgnored: prepared.differences } : {})
  }
  const images = new PgImages(pool, settings('images'))
  const texts = new PgTexts(pool, settings('texts'))
  let models: PgModelSlots
  try {
    if (identity.modelDir !== undefined) {
      await pool.query("UPDATE index_settings SET model_dir = $1 WHERE slot = 'active' AND model_id = $2 AND model_dir IS DISTINCT FROM $1", [identity.modelDir, identity.modelId])
    }
    models = await PgModelSlots.open(pool, { databaseUrl: opts.databaseUrl, timeouts: opts.timeouts, settings: { images: images.settings, texts: texts.settings }, logger: opts.logger, refreshMs: opts.recordRefreshMs, claimLeaseMs: opts.switchClaimLeaseMs })
  } catch (err) {
    await Promise.all([pool.end(), probePool.end()]).catch(() => {})
    throw toBackendError(err)
  }
  const backend = new PostgresBackend(pool, probePool, images, texts, new PgJobs(pool), new PgStaging(pool, opts.stagingMaxBytes), info, describeDatabase(opts.databaseUrl), opts.logger, models)
  backend.followIndexRecord((r) => { images.settings.vectorType = r.vectorType; texts.settings.vectorType = r.vectorType }, opts.recordRefreshMs)
  return backend
}
