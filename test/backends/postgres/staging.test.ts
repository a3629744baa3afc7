/**
 * Job uploads staged in PostgreSQL (issue 22), on a real server:
 *   - a file is written chunk by chunk as it arrives, and every byte value (0–255, invalid UTF-8)
 *     comes back exactly, across chunk boundaries;
 *   - it comes back as binary: the bytes on the wire are the file's own size, not base64's 4/3
 *     or hex's twice;
 *   - a server gone silent mid-read fails the read within the connection's read timeout;
 *   - a file staged as one row before chunks existed (migration 0008) reads back in place;
 *   - an upload past STAGING_MAX_BYTES, or one whose source fails mid-file (a client that went
 *     away), leaves nothing staged;
 *   - the sweep of job-less uploads spares one still arriving (its newest chunk is recent).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { connect, createServer, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { runner } from 'node-pg-migrate'
import pg from 'pg'
import type { IndexQueue } from '../../../src/backends/index-queue.js'
import { MIGRATIONS_DIR, MIGRATIONS_TABLE } from '../../../src/backends/postgres/migrate.js'
import { openPostgresBackend, type PostgresBackend } from '../../../src/backends/postgres/open-postgres-backend.js'
import { connectionConfig, createPool } from '../../../src/backends/postgres/pg-pool.js'
import { DEFAULT_TIMEOUTS } from '../../../src/backends/postgres/postgres-options.js'
import { PgStaging, STAGING_CHUNK_BYTES } from '../../../src/backends/postgres/pg-staging.js'
import { ClusterJobs } from '../../../src/jobs/cluster/cluster-jobs.js'
import { startTestPostgres, type TestPostgres } from '../../../scripts/lib/postgres-server.js'
import { startFreezableProxy } from '../../cluster/support/tcp-proxy.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

const started = await startTestPostgres({ engine: 'server' })
const skip = 'url' in started ? undefined : `no PostgreSQL: ${started.skip}`
const identity = { modelId: 'test-model', dim: 4 }

/** `bytes` handed over in pieces of `size` (as a request's body arrives), optionally failing after `failAfter` bytes */
async function * pieces (bytes: Buffer, size: number, failAfter = Infinity): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes.length; at += size) {
    if (at >= failAfter) throw new Error('the client went away')
    await new Promise((resolve) => setImmediate(resolve))
    yield bytes.subarray(at, at + size)
  }
}

/** A TCP proxy to the server that counts the bytes the server sends back. */
async function countingProxy (port: number): Promise<{ port: number, fromServer: () => number, reset: () => void, close: () => Promise<void> }> {
  let fromServer = 0
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1')
    for (const s of [client, upstream]) { sockets.add(s); s.on('error', () => {}) }
    upstream.on('data', (chunk: Buffer) => { fromServer += chunk.length })
    client.pipe(upstream)
    upstream.pipe(client)
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as { port: number }).port,
    fromServer: () => fromServer,
    reset: () => { fromServer = 0 },
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    }
  }
}

describe('uploads staged in PostgreSQL', { timeout: TIMEOUT.server, ...(skip === undefined ? {} : { skip }) }, () => {
  const db = started as TestPostgres
  let backend: PostgresBackend
  let staging: PgStaging
  const stagedRows = async (jobId: string): Promise<number> =>
    (await backend.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM staged_uploads WHERE job_id = $1', [jobId])).rows[0]!.n

  before(async () => {
    backend = await openPostgresBackend({ databaseUrl: db.url, poolSize: 4 }, identity)
    staging = backend.staging as PgStaging
  })
  after(async () => {
    await backend?.close()
    await db.stop()
  })

  it('every byte value comes back exactly, across chunk boundaries; an empty file is 0 bytes, a missing one undefined', async () => {
    // every value, in every position mod 256, then the sequences a UTF-8 decoder replaces
    const pattern = Buffer.from(Array.from({ length: 256 * 257 }, (_, i) => (i + Math.floor(i / 256)) % 256))
    const invalid = Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x90, 0x28, 0xbc, 0xff, 0xfe, 0x80, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0x00])
    const file = Buffer.concat([invalid, ...Array.from({ length: Math.ceil(2.5 * STAGING_CHUNK_BYTES / pattern.length) }, () => pattern), invalid])
    assert.equal(await staging.putStream('bytes', '00000-all.bin', pieces(file, 65_537)), file.length)
    await staging.putStream('bytes', '00001-empty.bin', pieces(Buffer.alloc(0), 1))
    assert.equal(await stagedRows('bytes'), Math.ceil(file.length / STAGING_CHUNK_BYTES) + 1, 'one row per chunk')
    const [all, empty, missing] = await staging.read('bytes', ['00000-all.bin', '00001-empty.bin', '00002-none.bin'])
    assert.equal(all?.length, file.length)
    assert.ok(all.equals(file), 'the bytes are exactly those staged')
    assert.deepEqual([empty, missing], [Buffer.alloc(0), undefined])
    await staging.remove('bytes')
  })

  it('staged bytes travel as binary: reading a file moves about its own size from the server', async () => {
    const file = randomBytes(4 * 1024 * 1024)
    await staging.put('wire', [{ path: '00000-photo.jpg', bytes: file }])
    const proxy = await countingProxy(Number(new URL(db.url).port))
    const u = new URL(db.url)
    u.hostname = '127.0.0.1'
    u.port = String(proxy.port)
    const pool = createPool(u.toString(), { poolSize: 1 })
    try {
      const proxied = new PgStaging(pool)
      await pool.query('SELECT 1') // the connection's start-up is not the read
      proxy.reset()
      const [read] = await proxied.read('wire', ['00000-photo.jpg'])
      assert.ok(read?.equals(file))
      const ratio = proxy.fromServer() / file.length
      // base64 is 1.33×, hex 2×; the protocol's own framing is well under 1%
      assert.ok(ratio < 1.05, `the server sent ${proxy.fromServer()} bytes for a ${file.length}-byte file (${ratio.toFixed(3)}×)`)
    } finally {
      await pool.end()
      await proxy.close()
      await staging.remove('wire')
    }
  })

  it('a read from a server gone silent mid-COPY fails within the connection\'s read timeout instead of hanging', async () => {
    const file = randomBytes(64 * 1024)
    await staging.put('silent', [{ path: '00000-a.jpg', bytes: file }])
    const proxy = await startFreezableProxy('127.0.0.1', Number(new URL(db.url).port))
    const timeouts = { ...DEFAULT_TIMEOUTS, statementTimeoutMs: 1000, tcpUserTimeoutMs: 1000 }
    const pool = createPool(proxy.urlFor(db.url), { poolSize: 1, timeouts })
    // what node-postgres waits for an answer: a little past the statement timeout (pg-pool.ts)
    const readTimeoutMs = connectionConfig(db.url, 'test', 'request', timeouts).query_timeout!
    try {
      await pool.query('SELECT 1')
      const frozen = proxy.freezeOn('COPY (SELECT path')
      const t0 = performance.now()
      await assert.rejects(new PgStaging(pool).read('silent', ['00000-a.jpg']))
      const ms = performance.now() - t0
      await frozen
      assert.ok(ms < 2 * readTimeoutMs, `the read failed after ${Math.round(ms)} ms; the read timeout is ${readTimeoutMs} ms`)
    } finally {
      await proxy.close()
      await pool.end().catch(() => {})
      await staging.remove('silent')
    }
  })

  it('a file staged as one row before migration 0008 reads back in place, as chunk 0', async () => {
    const url = await db.newDatabase()
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    const old = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 256))
    try {
      await client.query("SELECT set_config('align_search.dim', '4', false)")
      await runner({ dbClient: client, dir: MIGRATIONS_DIR, direction: 'up', count: 7, migrationsTable: MIGRATIONS_TABLE, log: () => {} })
      await client.query('INSERT INTO staged_uploads (job_id, path, bytes) VALUES ($1, $2, $3)', ['before', '00000-old.png', old])
    } finally {
      await client.end()
    }
    const migrated = await openPostgresBackend({ databaseUrl: url, poolSize: 2 }, identity)
    try {
      assert.deepEqual(await migrated.staging!.read('before', ['00000-old.png']), [old])
    } finally {
      await migrated.close()
    }
  })

  it('an upload past STAGING_MAX_BYTES answers 507 and leaves nothing staged; so does one whose client went away mid-file', async () => {
    // room for three chunks beside what the other tests left
    const before = Number((await backend.pool.query<{ n: string }>('SELECT COALESCE(sum(size), 0)::text AS n FROM staged_uploads')).rows[0]!.n)
    const capped = new PgStaging(backend.pool, before + 3 * STAGING_CHUNK_BYTES)
    const jobs = new ClusterJobs({} as IndexQueue, backend.jobs, capped, undefined)
    const file = randomBytes(2 * STAGING_CHUNK_BYTES)
    const upload = async function * () {
      yield { filename: 'a.jpg', bytes: pieces(file, 100_000) }
      yield { filename: 'b.jpg', bytes: pieces(file, 100_000) }
    }
    await assert.rejects(jobs.stageUploads('full', upload()), (err: { statusCode?: number, code?: string }) => err.statusCode === 507 && err.code === 'INSUFFICIENT_STORAGE')
    assert.equal(await stagedRows('full'), 0, 'the first file, and the chunks of the second, are gone')

    const cut = async function * () {
      yield { filename: 'a.jpg', bytes: pieces(file, 100_000) }
      yield { filename: 'b.jpg', bytes: pieces(file, 100_000, 1.5 * STAGING_CHUNK_BYTES) }
    }
    await assert.rejects(jobs.stageUploads('cut', cut()), /went away/)
    assert.equal(await stagedRows('cut'), 0)

    const { items } = await jobs.stageUploads('fits', [{ filename: 'a.jpg', bytes: file }])
    assert.deepEqual(items.map((i) => i.path), ['00000-a.jpg'])
    assert.deepEqual(await capped.read('fits', ['00000-a.jpg']), [file])
    await capped.remove('fits')
  })

  it('the sweep of uploads without a job spares one still arriving, and removes one whose newest chunk is old', async () => {
    await staging.putStream('arriving', '00000-a.jpg', pieces(randomBytes(STAGING_CHUNK_BYTES + 10), 4096))
    // its first chunk came two hours ago; the last one just now: the upload is slow, not dead
    await backend.pool.query("UPDATE staged_uploads SET staged_at = clock_timestamp() - interval '2 hours' WHERE job_id = 'arriving' AND chunk = 0")
    await staging.removeFinished()
    assert.equal(await stagedRows('arriving'), 2)
    await backend.pool.query("UPDATE staged_uploads SET staged_at = clock_timestamp() - interval '2 hours' WHERE job_id = 'arriving'")
    assert.equal(await staging.removeFinished(), 1)
    assert.equal(await stagedRows('arriving'), 0)
  })
})
