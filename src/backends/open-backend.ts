/**
 * Opens the backend the configuration names: PostgreSQL + pgvector when DATABASE_URL is set, else
 * the embedded SQLite + hnswlib in DATA_DIR. The server and the CLI both open it through here.
 */
import type { DatabaseConfig } from '../config.js'
import type { HnswParams } from '../index/index.js'
import type { Logger } from '../types.js'
import type { Backend, BackendIdentity } from './ports.js'
import { openPostgresBackend } from './postgres/open-postgres-backend.js'
import { openSqliteBackend } from './sqlite/open-sqlite-backend.js'

export interface BackendSettings {
  /** SQLite's folder (unused by PostgreSQL, whose thumbnails and jobs live in the database) */
  dataDir: string
  hnsw: HnswParams
  /** SQLite: HNSW snapshot after this many changes */
  checkpointEvery: number
  /** set: PostgreSQL (Config.database) */
  database?: DatabaseConfig
  logger?: Logger
}

export async function openBackend (s: BackendSettings, identity: BackendIdentity): Promise<Backend> {
  const logger = s.logger === undefined ? {} : { logger: s.logger }
  if (s.database !== undefined) {
    return await openPostgresBackend({ databaseUrl: s.database.url, poolSize: s.database.poolSize, vectorType: s.database.vectorType, hnsw: s.hnsw, ...logger }, identity)
  }
  return await openSqliteBackend({ dataDir: s.dataDir, hnsw: s.hnsw, checkpointEvery: s.checkpointEvery, ...logger }, identity)
}
