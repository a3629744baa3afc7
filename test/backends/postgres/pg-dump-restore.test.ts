/**
 * The PostgreSQL backend's backup is PostgreSQL's own: `pg_dump -Fc` of the database (tables,
 * pgvector index, the queue schema align_queue) restored with `pg_restore` into a fresh database
 * serves the same answers. Real PostgreSQL only (a throwaway cluster, or DATABASE_URL); skipped
 * with the reason where neither the server nor pg_dump is installed.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, it } from 'node:test'
import pg from 'pg'
import { pino } from 'pino'
import { openPostgresBackend } from '../../../src/backends/postgres/open-postgres-backend.js'
import { PgIndexQueue } from '../../../src/backends/postgres/queue/pg-index-queue.js'
import { startTestPostgres } from '../../../scripts/lib/postgres-server.js'
import { TIMEOUT } from '../../helpers/timeouts.js'
import { DIM, Pool } from '../../helpers/vectors.js'

const run = promisify(execFile)
const BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin'
const identity = { modelId: 'test-model', dim: DIM }
const server = await startTestPostgres({ engine: 'server' })
const skip = !('url' in server) ? server.skip : !existsSync(path.join(BIN, 'pg_dump')) ? `no pg_dump in ${BIN} (PG_BIN)` : undefined
const work = await mkdtemp(path.join(tmpdir(), 'pg-dump-'))
after(async () => { if ('url' in server) await server.stop(); await rm(work, { recursive: true, force: true }) })

it('pg_dump -Fc, then pg_restore into a fresh database, serves the same answers, queue schema included', { skip, timeout: TIMEOUT.server }, async () => {
  if (!('url' in server)) return
  const pool = new Pool(600, 8, 5)
  const backend = await openPostgresBackend({ databaseUrl: server.url, poolSize: 4 }, identity)
  const queue = await PgIndexQueue.open({ databaseUrl: server.url, retryAfterMs: 30_000, logger: pino({ level: 'silent' }) })
  const queries = Array.from({ length: 8 }, (_, c) => pool.query(c))
  let before: string[][]
  try {
    for (let i = 0; i < pool.rows.length; i += 200) await backend.images.add(pool.rows.slice(i, i + 200))
    await backend.texts.add(pool.texts(20))
    await backend.jobs.create({ id: 'job-1', kind: 'items', source: { items: 1 }, root: '/import', items: [{ path: 'a.png' }] })
    before = await Promise.all(queries.map(async (q) => (await backend.images.search(q, { k: 10 })).map((h) => h.id)))
  } finally {
    await queue.close()
    await backend.close()
  }

  const dump = path.join(work, 'align.dump')
  await run(path.join(BIN, 'pg_dump'), ['-Fc', '-f', dump, '-d', server.url])
  const fresh = await server.newDatabase()
  await run(path.join(BIN, 'pg_restore'), ['--no-owner', '--exit-on-error', '-d', fresh, dump])

  const client = new pg.Client({ connectionString: fresh })
  await client.connect()
  try {
    const { rows } = await client.query("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'align_queue'")
    assert.ok(rows[0].n > 0, 'the queue schema align_queue came with the dump')
  } finally { await client.end() }

  const restored = await openPostgresBackend({ databaseUrl: fresh, poolSize: 4 }, identity)
  try {
    assert.equal(await restored.images.count(), 600)
    assert.equal(await restored.texts.count(), 20)
    assert.equal((await restored.jobs.get('job-1'))?.total, 1)
    const after = await Promise.all(queries.map(async (q) => (await restored.images.search(q, { k: 10 })).map((h) => h.id)))
    assert.deepEqual(after, before)
    await assert.rejects(openPostgresBackend({ databaseUrl: fresh, poolSize: 1 }, { modelId: 'other', dim: DIM }), /other/, 'the identity came with it')
  } finally { await restored.close() }
})
