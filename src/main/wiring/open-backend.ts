/** Chooses and opens the storage backend the services run over. */
import type { Logger } from '../../core/types.js'
import type { Backend, BackendIdentity } from '../../backends/ports.js'
import type { DatabaseConfig } from '../config/config.js'
import { openSqliteBackend } from '../../backends/sqlite/open-sqlite-backend.js'

/** What choosing and opening a backend needs (ServicesConfig fits). */
export interface BackendConfig {
  /** DATA_DIR: the SQLite file and the index snapshots */
  dataDir: string
  /** HNSW parameters (defaults: DEFAULT_HNSW in src/core/limits.ts) */
  hnsw: { M: number, efConstruction: number, efSearch: number }
  /** SQLite: index snapshot after this many inserts + deletes */
  checkpointEvery: number
  /** SQLite: where backups are written (BACKUP_DIR; default dataDir/backups) */
  backupDir?: string | undefined
  /** PostgreSQL + pgvector when set (DATABASE_URL); otherwise the embedded SQLite backend in DATA_DIR */
  database?: DatabaseConfig | undefined
  /** PostgreSQL: STAGING_MAX_BYTES among the cluster job settings */
  clusterJobs?: { stagingMaxBytes?: number }
  /** PostgreSQL: INDEX_RETRY_AFTER, ms; a model switch's batch held by a process that died is claimed again within it, as an index batch */
  indexRetryAfterMs?: number
}

/** The backend `config` chooses: PostgreSQL when DATABASE_URL is set, else the embedded one. */
export function backendKind (config: BackendConfig): 'postgres' | 'sqlite' {
  return config.database === undefined ? 'sqlite' : 'postgres'
}

/**
 * Opens the backend for `config`: PostgreSQL when DATABASE_URL is set, else the embedded SQLite +
 * hnswlib one in DATA_DIR. A store written by another model is refused with ConflictError (409).
 */
export async function openBackend (config: BackendConfig, identity: BackendIdentity, logger: Logger): Promise<Backend> {
  if (config.database !== undefined) {
    // loaded only when chosen, so the embedded default never pays for pg's startup
    const { openPostgresBackend } = await import('../../backends/postgres/open-postgres-backend.js')
    return await openPostgresBackend({ databaseUrl: config.database.url, poolSize: config.database.poolSize, vectorType: config.database.vectorType, hnsw: config.hnsw, logger, ...(config.database.timeouts === undefined ? {} : { timeouts: config.database.timeouts }), ...(config.clusterJobs?.stagingMaxBytes === undefined ? {} : { stagingMaxBytes: config.clusterJobs.stagingMaxBytes }), ...(config.indexRetryAfterMs === undefined ? {} : { switchClaimLeaseMs: config.indexRetryAfterMs / 2 }) }, identity)
  }
  return await openSqliteBackend({ dataDir: config.dataDir, hnsw: config.hnsw, checkpointEvery: config.checkpointEvery, logger, ...(config.backupDir === undefined ? {} : { backupDir: config.backupDir }) }, identity)
}
