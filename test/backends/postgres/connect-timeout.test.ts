/**
 * Every PostgreSQL client gives up on a server that takes the TCP connection and never answers,
 * within PG_CONNECT_TIMEOUT (issue 22): the request pool (and /ready's, made the same way),
 * pg-boss's pool, and the queue's LISTEN connection, each through a tiny net server (or a proxy
 * frozen after the queue opened) that accepts and stays silent. Without a connect timeout each of
 * these waits for ever: a worker's idle poll would hang on LISTEN.
 */
import assert from 'node:assert/strict'
import { createServer, type Socket } from 'node:net'
import { after, describe, it } from 'node:test'
import pg from 'pg'
import { pino } from 'pino'
import { connectionConfig, createPool } from '../../../src/backends/postgres/pg-pool.js'
import { DEFAULT_TIMEOUTS } from '../../../src/backends/postgres/postgres-options.js'
import { PgIndexQueue } from '../../../src/backends/postgres/queue/pg-index-queue.js'
import { startTestPostgres, type TestPostgres } from '../../../scripts/lib/postgres-server.js'
import { startFreezableProxy } from '../../cluster/support/tcp-proxy.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

/** the configured connect timeout: short, so the default (5 s) or none at all shows as a failure */
const CONNECT_MS = 800
const timeouts = { ...DEFAULT_TIMEOUTS, connectTimeoutMs: CONNECT_MS }
/** how far past the timeout giving up may come (timers on a loaded machine, pg-boss's own start) */
const SLACK = 2.5

/** A server that accepts every TCP connection and never sends a byte. */
async function silentServer (): Promise<{ url: string, accepted: () => number, close: () => Promise<void> }> {
  const sockets = new Set<Socket>()
  const server = createServer((s) => { sockets.add(s); s.on('error', () => {}) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `postgres://align:secret@127.0.0.1:${(server.address() as { port: number }).port}/align`,
    accepted: () => sockets.size,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    }
  }
}

/** ms `fn` takes to settle, and whether it threw */
async function timed (fn: () => Promise<unknown>): Promise<{ ms: number, threw: boolean }> {
  const t0 = performance.now()
  let threw = false
  try { await fn() } catch { threw = true }
  return { ms: performance.now() - t0, threw }
}

const started = await startTestPostgres({ engine: 'server' })
const skip = 'url' in started ? undefined : `no PostgreSQL: ${started.skip}`
const logger = pino({ level: 'silent' })

describe('a server that accepts and never answers', { timeout: TIMEOUT.server }, () => {
  after(async () => { if ('url' in started) await started.stop() })

  it('every role\'s connection settings carry PG_CONNECT_TIMEOUT', () => {
    for (const role of ['request', 'queue', 'maintenance'] as const) {
      assert.equal(connectionConfig('postgres://db/align', 'test', role, timeouts).connectionTimeoutMillis, CONNECT_MS, role)
    }
  })

  it('the request pool (and /ready\'s, made alike) gives up within PG_CONNECT_TIMEOUT', async () => {
    const silent = await silentServer()
    const pool = createPool(silent.url, { poolSize: 1, timeouts })
    try {
      const r = await timed(async () => await pool.query('SELECT 1'))
      assert.ok(silent.accepted() >= 1, 'the connection was accepted')
      assert.ok(r.threw && r.ms < SLACK * CONNECT_MS, `the query settled after ${Math.round(r.ms)} ms (threw: ${r.threw}); PG_CONNECT_TIMEOUT is ${CONNECT_MS} ms`)
    } finally {
      await pool.end().catch(() => {})
      await silent.close()
    }
  })

  it('pg-boss\'s pool: opening the queue fails within PG_CONNECT_TIMEOUT', async () => {
    const silent = await silentServer()
    try {
      const r = await timed(async () => await PgIndexQueue.open({ databaseUrl: silent.url, retryAfterMs: 5000, logger, timeouts }))
      assert.ok(r.threw && r.ms < SLACK * CONNECT_MS, `opening settled after ${Math.round(r.ms)} ms (threw: ${r.threw}); PG_CONNECT_TIMEOUT is ${CONNECT_MS} ms`)
    } finally {
      await silent.close()
    }
  })

  it('the LISTEN connection of an open queue gives up within PG_CONNECT_TIMEOUT once the server goes silent', { ...(skip === undefined ? {} : { skip }) }, async () => {
    const db = started as TestPostgres
    const target = new URL(db.url)
    const proxy = await startFreezableProxy('127.0.0.1', Number(target.port))
    const url = proxy.urlFor(db.url)
    const queue = await PgIndexQueue.open({ databaseUrl: url, retryAfterMs: 5000, logger, timeouts })
    try {
      // a marker query through the proxy freezes it: from then on new connections are accepted and ignored
      const frozen = proxy.freezeOn('freeze-the-proxy-now')
      const marker = new pg.Client({ connectionString: url })
      marker.on('error', () => {})
      await marker.connect()
      marker.query("SELECT 'freeze-the-proxy-now'").catch(() => {})
      await frozen
      const r = await timed(async () => await queue.listen(() => {}))
      assert.ok(r.ms < SLACK * CONNECT_MS, `listen() settled after ${Math.round(r.ms)} ms; PG_CONNECT_TIMEOUT is ${CONNECT_MS} ms`)
      assert.equal((queue as unknown as { listener?: unknown }).listener, undefined, 'no listener was kept')
      void marker.end().catch(() => {})
    } finally {
      await proxy.close()
      await queue.close().catch(() => {})
    }
  })
})
