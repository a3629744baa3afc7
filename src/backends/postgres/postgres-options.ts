/** What opening the PostgreSQL backend takes (from DATABASE_URL, DATABASE_POOL_SIZE, PG_VECTOR_TYPE, HNSW_*). */
import type { HnswParams, Logger } from '../../core/types.js'

/**
 * How the HNSW index stores vectors. `vector` is float32; `halfvec` indexes `embedding::halfvec(D)`
 * (an expression index: the table keeps float32, the graph takes half the bytes).
 */
export type PgVectorType = 'vector' | 'halfvec'

export interface PostgresBackendOptions {
  /** postgres:// or postgresql:// URL */
  databaseUrl: string
  /** most connections this process opens (default 10) */
  poolSize?: number
  /** default `vector` */
  vectorType?: PgVectorType
  /** M and efConstruction apply when the index is created; efSearch on every search */
  hnsw?: Partial<HnswParams>
  logger?: Logger
}
