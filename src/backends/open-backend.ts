/** Chooses and opens the storage backend the services run over. */
import type { Logger } from '../types.js'
import type { Backend, BackendIdentity } from './ports.js'
import { openSqliteBackend } from './sqlite/open-sqlite-backend.js'

/** What choosing and opening a backend needs (ServicesConfig fits). */
export interface BackendConfig {
  /** DATA_DIR: the SQLite file and the index snapshots */
  dataDir: string
  /** HNSW parameters (defaults: DEFAULT_HNSW in src/limits.ts) */
  hnsw: { M: number, efConstruction: number, efSearch: number }
  /** SQLite: index snapshot after this many inserts + deletes */
  checkpointEvery: number
}

/**
 * Opens the backend for `config`: today always the embedded SQLite + hnswlib one in DATA_DIR.
 * A store written by another model is refused with ConflictError (409).
 */
export async function openBackend (config: BackendConfig, identity: BackendIdentity, logger: Logger): Promise<Backend> {
  // the PostgreSQL branch (DATABASE_URL → openPostgresBackend) goes here, before the default
  return await openSqliteBackend({ dataDir: config.dataDir, hnsw: config.hnsw, checkpointEvery: config.checkpointEvery, logger }, identity)
}
