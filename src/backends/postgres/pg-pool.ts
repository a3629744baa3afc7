/**
 * The connection pool, and the two ways the backend borrows from it. A server that goes away must
 * not crash the process: node-postgres reports a dead idle connection as an 'error' event on the
 * pool, and a dead borrowed one as an 'error' event on the client, and an unhandled 'error' event
 * kills Node. Both are handled here; the pool opens new connections once the server is back.
 * Every error leaves through toBackendError, so a database that went away mid-request reaches
 * the caller as BackendUnavailableError (503), whatever the statement was.
 * Every connection carries the timeouts of ConnectionTimeouts (connectionConfig), so a host that
 * vanishes never holds locks for longer than the server's idle-in-transaction timeout.
 */
import pg from 'pg'
import { StorageFullError } from '../../core/errors.js'
import type { Logger } from '../../core/types.js'
import { toBackendError } from './pg-errors.js'
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_TIMEOUTS, type ConnectionTimeouts } from './postgres-options.js'

/** what a connection is for: `request` and `queue` get the statement timeout; `maintenance` (migrations, index builds) does not */
export type ConnectionRole = 'request' | 'queue' | 'maintenance'

/**
 * node-postgres settings for one connection (a Client's, or each of a Pool's), with the timeouts:
 * statement_timeout, lock_timeout and idle_in_transaction_session_timeout travel as startup
 * parameters; the server's side of the TCP connection gets tcp_user_timeout and keepalives through
 * `options` (a dead client's session, and its locks, go within seconds); our side gets keepalives
 * after `keepAliveIdleMs`, and a client-side timer a little past the statement timeout, since no
 * statement timeout fires when the server itself is what went silent.
 * PgBouncer in transaction mode passes no startup `options` on: set these on the role there
 * (ALTER ROLE ... SET), as the README says.
 */
export function connectionConfig (connectionString: string, applicationName: string, role: ConnectionRole, timeouts: ConnectionTimeouts = DEFAULT_TIMEOUTS): pg.ClientConfig {
  const t = timeouts
  const tcpUserMs = t.tcpUserTimeoutMs
  const keepIdleS = Math.max(1, Math.round(t.keepAliveIdleMs / 1000))
  const serverTcp = [
    `-c tcp_keepalives_idle=${keepIdleS}`,
    `-c tcp_keepalives_interval=${Math.max(1, Math.round(keepIdleS / 3))}`,
    '-c tcp_keepalives_count=3',
    ...(tcpUserMs > 0 ? [`-c tcp_user_timeout=${tcpUserMs}`] : [])
  ]
  const statementMs = role === 'maintenance' ? 0 : t.statementTimeoutMs
  return {
    connectionString,
    application_name: applicationName,
    // an unreachable host, or one that takes the TCP connection and never answers, otherwise hangs the caller
    connectionTimeoutMillis: t.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: t.keepAliveIdleMs,
    // 0 is "no limit" on the server, but node-postgres leaves 0 out: state it through options then
    ...(statementMs > 0 ? { statement_timeout: statementMs, query_timeout: statementMs + Math.max(5000, tcpUserMs) } : {}),
    ...(t.lockTimeoutMs > 0 ? { lock_timeout: t.lockTimeoutMs } : {}),
    ...(t.idleInTransactionTimeoutMs > 0 ? { idle_in_transaction_session_timeout: t.idleInTransactionTimeoutMs } : {}),
    options: [...serverTcp, ...(statementMs === 0 ? ['-c statement_timeout=0'] : [])].join(' ')
  }
}

export interface PoolOptions {
  poolSize: number
  logger?: Logger | undefined
  /**
   * SET statement every new connection runs before the pool hands it out (pg-pool's awaited
   * onConnect), e.g. the search's ef_search, so a search needs no SET of its own
   */
  session?: string | undefined
  timeouts?: ConnectionTimeouts | undefined
  /** default 'align-search' */
  applicationName?: string
}

/**
 * A pool whose `query` reports an unreachable database as BackendUnavailableError. pg.Pool's own
 * query releases a connection that failed as broken, so a dead one is never handed out again.
 */
export function createPool (databaseUrl: string, opts: PoolOptions): pg.Pool {
  const { logger, session } = opts
  const pool = new pg.Pool({
    ...connectionConfig(databaseUrl, opts.applicationName ?? 'align-search', 'request', opts.timeouts),
    max: opts.poolSize,
    idleTimeoutMillis: 30_000,
    // awaited by pg-pool before it hands the connection out: the first query never queues behind
    // the SET (pg deprecates sending a query while another runs); a connection whose SET failed
    // is ended, and the query that asked for it fails with the reason
    ...(session === undefined ? {} : { onConnect: async (client: pg.ClientBase) => { await takeSession(client, session, logger) } })
  })
  pool.on('error', (err) => {
    logger?.warn({ err: err.message }, 'an idle PostgreSQL connection was lost; the pool opens a new one when needed')
  })
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown
  // every caller here uses the promise form; the callback form is left as it is
  pool.query = ((...args: unknown[]) => {
    const result = query(...args)
    return result instanceof Promise ? result.catch((err: unknown) => { throw toBackendError(err) }) : result
  }) as typeof pool.query
  return pool
}

async function takeSession (client: pg.ClientBase, session: string, logger: Logger | undefined): Promise<void> {
  try {
    await client.query(session)
  } catch (err) {
    logger?.warn({ err: (err as Error).message }, 'a new PostgreSQL connection could not take its session settings')
    throw toBackendError(err)
  }
}

/**
 * Runs `fn` on one borrowed connection. A connection that broke meanwhile is dropped rather than
 * reused (pg-pool also drops one that ended); an error of our own leaves a healthy one in the pool.
 */
export async function withClient<T> (pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect().catch((err: unknown) => { throw toBackendError(err) })
  let broken: Error | undefined
  const onError = (err: Error): void => { broken = err }
  client.on('error', onError)
  try {
    return await fn(client)
  } catch (err) {
    // a client-side query timeout leaves the connection mid-statement: it must not be reused
    if (err instanceof Error && /Query read timeout/.test(err.message)) broken ??= err
    throw toBackendError(err)
  } finally {
    client.off('error', onError)
    client.release(broken ?? false)
  }
}

/** Runs `fn` in one transaction: all of it commits, or none of it. */
export async function withTransaction<T> (pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return await withClient(pool, async (client) => await inTransaction(client, fn))
}

/** BEGIN, `fn`, COMMIT on a connection already borrowed; ROLLBACK when `fn` throws. */
export async function inTransaction<T> (client: pg.PoolClient, fn: (client: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  await client.query(begin)
  let result: T
  try {
    result = await fn(client)
  } catch (err) {
    // a failed ROLLBACK means the connection is gone: make sure the pool does not keep it
    await client.query('ROLLBACK').catch((rollbackErr: Error) => { client.emit('error', rollbackErr) })
    throw err
  }
  await client.query('COMMIT')
  return result
}

/** SQLSTATEs after which the same transaction may succeed when run again */
const RETRYABLE = new Set(['40001', '40P01', '55P03']) // serialization failure, deadlock, lock not granted within lock_timeout

/**
 * Runs a transaction again (up to `attempts` times) when it lost a race: a deadlock, or a
 * concurrent writer that committed the same key between our read and our insert (RaceLost).
 */
export async function withRetriedTransaction<T> (pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await withTransaction(pool, fn)
    } catch (err) {
      const cause = err instanceof Error && err.cause !== undefined ? err.cause : err
      const retry = err instanceof RaceLost || cause instanceof RaceLost || (isDatabaseError(cause) && RETRYABLE.has(cause.code))
      if (!retry || i >= attempts) throw mapDiskFull(err)
    }
  }
}

/** Thrown inside a transaction to roll it back and run it again with fresh reads. */
export class RaceLost extends Error {
  constructor () {
    super('a concurrent writer stored the same key first')
    this.name = 'RaceLost'
  }
}

/** SQLSTATE 53100 (disk_full) as StorageFullError (507), as the SQLite backend answers a full disk */
export function mapDiskFull (err: unknown): unknown {
  if (isDatabaseError(err) && err.code === '53100') return new StorageFullError(`the PostgreSQL server is out of disk space: ${err.message}. Free space there and retry`)
  return err
}

export function isDatabaseError (err: unknown): err is pg.DatabaseError & { code: string } {
  return err instanceof pg.DatabaseError && typeof err.code === 'string'
}
