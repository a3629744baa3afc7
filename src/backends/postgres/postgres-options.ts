/** What opening the PostgreSQL backend takes (from DATABASE_URL, DATABASE_POOL_SIZE, PG_VECTOR_TYPE, HNSW_*, PG_*_TIMEOUT). */
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
  /** every connection's timeouts (default DEFAULT_TIMEOUTS) */
  timeouts?: ConnectionTimeouts
  /** how often the database's index record is re-read, ms (default RECORD_REFRESH_MS: 30 s) */
  recordRefreshMs?: number
  /** STAGING_MAX_BYTES: the most bytes of job uploads staged at once; a larger upload is refused (507). Default: no cap */
  stagingMaxBytes?: number
  /** a model switch's claim of rows to embed lapses this long after its holder stopped renewing it, ms (pg-model-slots.ts; default half of DEFAULT_INDEX_RETRY_AFTER_MS) */
  switchClaimLeaseMs?: number
  logger?: Logger
}

/**
 * Timeouts every connection carries (PG_* settings; README "Cluster mode"), in ms; 0 = none.
 * They bound what a lost machine can hold: a session whose host vanished mid-transaction is ended
 * by the server after `idleInTransactionTimeoutMs` (or `tcpUserTimeoutMs` once data goes
 * unacknowledged), which releases its row locks, and a writer waits at most `lockTimeoutMs` per try.
 */
export interface ConnectionTimeouts {
  /** PG_STATEMENT_TIMEOUT: the longest statement (migrations and index builds are exempt) */
  statementTimeoutMs: number
  /** PG_LOCK_TIMEOUT: the longest wait for one lock */
  lockTimeoutMs: number
  /** PG_IDLE_IN_TRANSACTION_TIMEOUT: a transaction that sits idle this long is ended by the server */
  idleInTransactionTimeoutMs: number
  /** PG_TCP_USER_TIMEOUT: the server drops a connection whose sent data stays unacknowledged this long */
  tcpUserTimeoutMs: number
  /** PG_KEEPALIVE_IDLE: TCP keepalives start after this much silence, on both sides */
  keepAliveIdleMs: number
  /**
   * PG_CONNECT_TIMEOUT: a connection attempt that has not finished in this long fails (a host that
   * takes the TCP connection and never answers would otherwise hold the caller for ever); default
   * DEFAULT_CONNECT_TIMEOUT_MS
   */
  connectTimeoutMs?: number
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 5000

export const DEFAULT_TIMEOUTS: ConnectionTimeouts = {
  statementTimeoutMs: 30_000,
  lockTimeoutMs: 10_000,
  idleInTransactionTimeoutMs: 20_000,
  tcpUserTimeoutMs: 20_000,
  keepAliveIdleMs: 10_000,
  connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS
}
