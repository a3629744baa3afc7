/**
 * The PostgreSQL backend through faults, on a real server of its own (skips with the reason
 * elsewhere): a database that goes away mid-request answers BackendUnavailableError (503) naming
 * the cause and not the address; /ready's probe has its own connection, so a saturated pool does
 * not fail it; every connection carries the timeouts, so a session that stalls inside a
 * transaction loses its locks; a process with other index settings leaves the index alone and
 * follows the database; db:reindex builds beside, swaps and drops.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { startTestPostgres, type TestPostgres } from '../../../scripts/lib/postgres-server.js'
import { openPostgresBackend } from '../../../src/backends/postgres/open-postgres-backend.js'
import { connectionConfig } from '../../../src/backends/postgres/pg-pool.js'
import { readIndexRecord } from '../../../src/backends/postgres/index-settings.js'
import { BackendUnavailableError } from '../../../src/core/errors.js'
import type { Logger } from '../../../src/core/types.js'
import { parseReindexArgs, runReindex } from '../../../src/main/cli/db-reindex.js'
import { TIMEOUT } from '../../helpers/timeouts.js'
import { DIM, Pool } from '../../helpers/vectors.js'

const identity = { modelId: 'test-model', dim: DIM }
const started = await startTestPostgres({ engine: 'server' })
const skip = !('url' in started) ? started.skip : started.serverDown === undefined ? 'needs a PostgreSQL cluster of its own to stop and start' : undefined

function recordingLogger (): Logger & { lines: Array<{ level: string, msg: string }> } {
  const lines: Array<{ level: string, msg: string }> = []
  const at = (level: string) => (obj: unknown, msg?: string) => { lines.push({ level, msg: msg ?? String(obj) }) }
  const logger = { lines, info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug'), fatal: at('fatal'), child: () => logger }
  return logger as unknown as Logger & { lines: typeof lines }
}

async function indexes (url: string): Promise<Array<{ name: string, oid: number }>> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    const r = await c.query<{ name: string, oid: number }>("SELECT c.relname AS name, c.oid::int AS oid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid WHERE c.relname LIKE '%hnsw%' ORDER BY 1")
    return r.rows
  } finally {
    await c.end()
  }
}

describe('PostgreSQL backend through faults', { timeout: TIMEOUT.server, ...(skip === undefined ? {} : { skip }) }, () => {
  const db = started as TestPostgres
  const data = new Pool(40, 4, 7)
  after(async () => { if (skip === undefined) await db.stop() })

  describe('the database goes away mid-request', () => {
    let url = ''
    before(async () => { url = await db.newDatabase() })

    it('every call answers BackendUnavailableError naming the cause, never the address; all serve again once it is back', async () => {
      const backend = await openPostgresBackend({ databaseUrl: url, poolSize: 2 }, identity)
      try {
        await backend.images.add(data.rows.slice(0, 10))
        await db.serverDown!('fast')
        const calls: Array<[string, () => Promise<unknown>]> = [
          ['get', async () => await backend.images.get(data.rows[0]!.id)],
          ['add', async () => await backend.images.add(data.rows.slice(10, 20))],
          ['search', async () => await backend.images.search(data.rows[0]!.embedding, { k: 3 })],
          ['filtered search', async () => await backend.images.search(data.rows[0]!.embedding, { k: 3, filter: { a: 1 } })],
          ['count', async () => await backend.images.count()],
          ['job view', async () => await backend.jobs.view('nope')]
        ]
        for (const [name, call] of calls) {
          const err = await call().then(() => undefined, (e: unknown) => e)
          assert.ok(err instanceof BackendUnavailableError, `${name}: ${String(err)}`)
          assert.equal((err as { statusCode: number }).statusCode, 503)
          assert.match((err as Error).message, /^PostgreSQL is unavailable: /)
          assert.doesNotMatch((err as Error).message, /127\.0\.0\.1|postgres@|:\d{4,5}\b/, `${name} names no address`)
        }
        const health = await backend.health()
        assert.equal(health.ok, false)
        assert.doesNotMatch(health.reason ?? '', /127\.0\.0\.1|postgres@/)
        await db.serverUp!()
        // the pool opens new connections: no restart of the process
        assert.equal((await backend.images.get(data.rows[0]!.id))?.id, data.rows[0]!.id)
        const outcomes = await backend.images.add(data.rows.slice(10, 20))
        assert.ok(outcomes.every((o) => o.status === 'indexed'), 'the write refused during the outage left nothing behind')
        assert.equal(await backend.images.count(), 20)
      } finally {
        await backend.close()
      }
    })
  })

  it('/ready has a connection of its own: with every pooled connection taken, health() still answers', async () => {
    const backend = await openPostgresBackend({ databaseUrl: await db.newDatabase(), poolSize: 2 }, identity)
    const held = [await backend.pool.connect(), await backend.pool.connect()]
    try {
      assert.deepEqual(await backend.health(), { ok: true })
    } finally {
      for (const c of held) c.release()
      await backend.close()
    }
  })

  it('every connection carries the timeouts (and the pool, the search ef_search); migrations and index builds have no statement timeout', async () => {
    const url = await db.newDatabase()
    const timeouts = { statementTimeoutMs: 7000, lockTimeoutMs: 3000, idleInTransactionTimeoutMs: 4000, tcpUserTimeoutMs: 6000, keepAliveIdleMs: 5000 }
    const backend = await openPostgresBackend({ databaseUrl: url, poolSize: 1, timeouts, hnsw: { efSearch: 77 } }, identity)
    try {
      const show = async (q: pg.Pool | pg.Client, name: string): Promise<string | undefined> => (await q.query<Record<string, string>>(`SHOW ${name}`)).rows[0]?.[name]
      // and the search's session setting (the pool's awaited connect hook), from the first query on
      const expected = { 'hnsw.ef_search': '77', statement_timeout: '7s', lock_timeout: '3s', idle_in_transaction_session_timeout: '4s', tcp_user_timeout: '6000', tcp_keepalives_idle: '5' }
      for (const [name, value] of Object.entries(expected)) assert.equal(await show(backend.pool, name), value, name)
      for (const role of ['queue', 'maintenance'] as const) {
        const c = new pg.Client(connectionConfig(url, `test ${role}`, role, timeouts))
        await c.connect()
        try {
          assert.equal(await show(c, 'statement_timeout'), role === 'maintenance' ? '0' : '7s', role)
          assert.equal(await show(c, 'idle_in_transaction_session_timeout'), '4s', role)
          assert.equal(await show(c, 'tcp_user_timeout'), '6000', role)
        } finally {
          await c.end()
        }
      }
    } finally {
      await backend.close()
    }
  })

  it('a session that stalls inside a transaction is ended by the server, and its row locks go with it', async () => {
    const url = await db.newDatabase()
    const timeouts = { statementTimeoutMs: 30_000, lockTimeoutMs: 0, idleInTransactionTimeoutMs: 1000, tcpUserTimeoutMs: 5000, keepAliveIdleMs: 5000 }
    const backend = await openPostgresBackend({ databaseUrl: url, poolSize: 2, timeouts }, identity)
    const stalled = new pg.Client(connectionConfig(url, 'test stalled', 'request', timeouts))
    stalled.on('error', () => {})
    try {
      await backend.jobs.create({ id: 'j', kind: 'items', source: { items: 0 }, root: '/', items: [] })
      await stalled.connect()
      await stalled.query('BEGIN')
      await stalled.query("SELECT 1 FROM jobs WHERE id = 'j' FOR UPDATE")
      // the holder goes silent (as a vanished host does); a writer of the same row waits, then gets it
      const t0 = Date.now()
      await backend.pool.query("UPDATE jobs SET status = 'running' WHERE id = 'j'")
      const waited = Date.now() - t0
      assert.ok(waited >= 500, `the writer waited for the lock (${waited} ms)`)
      assert.equal((await backend.jobs.view('j'))?.status, 'running')
    } finally {
      await stalled.end().catch(() => {})
      await backend.close()
    }
  })

  describe('index settings live in the database', () => {
    it('a process with other settings leaves the index untouched, follows the database and says so', async () => {
      const url = await db.newDatabase()
      const first = await openPostgresBackend({ databaseUrl: url, poolSize: 1, hnsw: { M: 8, efConstruction: 40 } }, identity)
      await first.images.add(data.rows.slice(0, 20))
      const before = await indexes(url)
      assert.deepEqual(before.map((i) => i.name), ['images_embedding_vector_hnsw', 'texts_embedding_vector_hnsw'])
      const logger = recordingLogger()
      const other = await openPostgresBackend({ databaseUrl: url, poolSize: 1, vectorType: 'halfvec', hnsw: { M: 12, efConstruction: 40 }, logger }, identity)
      try {
        assert.deepEqual(await indexes(url), before, 'same indexes, same oids: nothing dropped or rebuilt')
        const info = other.indexInfo()
        assert.equal(info.vectorType, 'vector')
        assert.equal(info.M, 8)
        assert.deepEqual(info.settingsIgnored, ['PG_VECTOR_TYPE=halfvec, the database\'s index: vector', 'HNSW_M=12, the database\'s index: 8'])
        const warning = logger.lines.find((l) => l.level === 'warn' && /following the database/.test(l.msg))
        assert.ok(warning, 'the log says it follows the database')
        assert.match(warning.msg, /PG_VECTOR_TYPE=halfvec.*HNSW_M=12.*npm run db:reindex/)
        // its searches name the database's index: the planner uses it
        const q = data.rows[0]!.embedding
        assert.equal((await other.images.search(q, { k: 1 }))[0]?.id, data.rows[0]!.id)
        const plan = await other.pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN SELECT id FROM images ORDER BY embedding <=> '[${Array.from(q).join(',')}]' LIMIT 5`)
        assert.match(plan.rows.map((r) => r['QUERY PLAN']).join('\n'), /images_embedding_vector_hnsw/)
      } finally {
        await other.close()
        await first.close()
      }
    })

    it('db:reindex builds the new index beside the old one, swaps the record, drops the old one; running processes follow', async () => {
      const url = await db.newDatabase()
      const running = await openPostgresBackend({ databaseUrl: url, poolSize: 1, recordRefreshMs: 100 }, identity)
      try {
        await running.images.add(data.rows.slice(0, 20))
        assert.throws(() => parseReindexArgs([]), /nothing to change/)
        assert.throws(() => parseReindexArgs(['--vector-type', 'float16']), /vector or halfvec/)
        const logger = recordingLogger()
        const done = await runReindex(url, parseReindexArgs(['--vector-type', 'halfvec', '--m', '12', '--grace', '1s']), logger)
        assert.deepEqual(done, { changed: true, settings: { vectorType: 'halfvec', M: 12, efConstruction: 200 } })
        assert.ok(logger.lines.some((l) => /CONCURRENTLY/.test(l.msg)))
        assert.deepEqual((await indexes(url)).map((i) => i.name), ['images_embedding_halfvec_hnsw', 'texts_embedding_halfvec_hnsw'])
        const c = new pg.Client({ connectionString: url })
        await c.connect()
        try {
          assert.deepEqual(await readIndexRecord(c), { modelId: identity.modelId, dim: DIM, vectorType: 'halfvec', M: 12, efConstruction: 200 })
          assert.equal(await readIndexRecord(c, 'next'), undefined)
        } finally {
          await c.end()
        }
        assert.equal(running.indexInfo().vectorType, 'halfvec', 'the running process re-read the record')
        assert.equal((await running.images.search(data.rows[3]!.embedding, { k: 1 }))[0]?.id, data.rows[3]!.id)
        assert.deepEqual(await runReindex(url, { vectorType: 'halfvec', graceMs: 0 }, logger), { changed: false, settings: { vectorType: 'halfvec', M: 12, efConstruction: 200 } })
      } finally {
        await running.close()
      }
    })
  })
})
