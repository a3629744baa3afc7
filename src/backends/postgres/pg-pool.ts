/**
 * The connection pool, and the two ways the backend borrows from it. A server that goes away must
 * not crash the process: node-postgres reports a dead idle connection as an 'error' event on the
 * pool, and a dead borrowed one as an 'error' event on the client, and an unhandled 'error' event
 * kills Node. Both are handled here; the pool opens new connections once the server is back.
 */
import pg from 'pg'
import { StorageFullError } from '../../core/errors.js'
import type { Logger } from '../../core/types.js'

/** how long a connection attempt may take before the query fails (an unreachable host otherwise hangs) */
const CONNECT_TIMEOUT_MS = 5000

/**
 * @param session SET statement every new connection runs first (node-postgres queues it ahead of the
 *   connection's first query), e.g. the search's ef_search, so a search needs no SET of its own
 */
export function createPool (databaseUrl: string, poolSize: number, logger: Logger | undefined, session?: string): pg.Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: poolSize,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: 'align-search'
  })
  if (session !== undefined) {
    pool.on('connect', (client) => {
      // a failure here fails the connection's first query too, which reports it
      client.query(session).catch((err: unknown) => { logger?.warn({ err: (err as Error).message }, 'a new PostgreSQL connection could not take its session settings') })
    })
  }
  pool.on('error', (err) => {
    logger?.warn({ err: err.message }, 'an idle PostgreSQL connection was lost; the pool opens a new one when needed')
  })
  return pool
}

/**
 * Runs `fn` on one borrowed connection. A connection that broke meanwhile is dropped rather than
 * reused (pg-pool also drops one that ended); an error of our own leaves a healthy one in the pool.
 */
export async function withClient<T> (pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  let broken: Error | undefined
  const onError = (err: Error): void => { broken = err }
  client.on('error', onError)
  try {
    return await fn(client)
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
const RETRYABLE = new Set(['40001', '40P01']) // serialization failure, deadlock

/**
 * Runs a transaction again (up to `attempts` times) when it lost a race: a deadlock, or a
 * concurrent writer that committed the same key between our read and our insert (RaceLost).
 */
export async function withRetriedTransaction<T> (pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await withTransaction(pool, fn)
    } catch (err) {
      const retry = err instanceof RaceLost || (isDatabaseError(err) && RETRYABLE.has(err.code))
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
