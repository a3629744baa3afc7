/**
 * The server over PostgreSQL when the database is down: it starts anyway, /ready answers 503 with
 * the reason, the log says why, and it serves once the database is back, with no restart. After a
 * later outage (a crash: `pg_ctl -m immediate`) every route answers 503 with Retry-After, naming
 * the cause and never the database's address, an upload is not acknowledged and leaves nothing
 * behind, and all serve again once it is back. Needs a server of our own to stop and start (skips
 * with the reason otherwise).
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { startServer, type RunningServer } from '../helpers/spawn-server.js'
import { startTestPostgres, type TestPostgres } from '../../scripts/lib/postgres-server.js'
import { Api, httpTransport, type Res } from '../reliability/support/api.js'
import { distinctImage } from '../reliability/support/images.js'
import { withDatabase } from '../cluster/support/cluster.js'

/** a 503 in the one error shape, with Retry-After, naming the database's cause but not its address */
function assertUnavailable (res: Res, what: string): void {
  assert.equal(res.status, 503, `${what}: ${res.status} ${res.text}`)
  assert.equal(res.headers.get('retry-after'), '5', `${what}: Retry-After`)
  assert.equal(res.json?.statusCode, 503, what)
  assert.match(res.json?.message ?? '', /PostgreSQL/, `${what}: the cause is named`)
  assert.doesNotMatch(res.text, /127\.0\.0\.1|postgres@|Internal Server Error/, `${what}: no address, no bare 500`)
}

async function ready (url: string): Promise<{ status: number, body: { message?: string } }> {
  const res = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(5000) })
  return { status: res.status, body: await res.json() as { message?: string } }
}

async function until (check: () => Promise<boolean>, ms = 90_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

describe('PostgreSQL unreachable', async () => {
  const pg = await startTestPostgres({ engine: 'server', synchronousCommit: true })
  const skip = 'skip' in pg ? pg.skip : pg.serverDown === undefined ? 'needs a PostgreSQL cluster of its own to stop and start (DATABASE_URL is external)' : undefined
  let db: TestPostgres
  let server: RunningServer | undefined
  let dataDir: string
  before(async () => {
    if (skip !== undefined) return
    db = pg as TestPostgres
    dataDir = await mkdtemp(path.join(tmpdir(), 'pg-unreachable-'))
  })
  after(async () => {
    await server?.stop()
    if (skip === undefined) await db.stop()
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true })
  })

  it('starts while the database is down, says why in /ready, and serves once it is back', { skip }, async () => {
    await db.serverDown!()
    await mkdir(path.join(dataDir, 'import', 'pics'), { recursive: true })
    server = await startServer({ DATABASE_URL: db.url, DATA_DIR: dataDir, IMPORT_DIR: path.join(dataDir, 'import'), MODEL_DIR: 'test/fixtures/align-tiny', DEMO_POOL: '', LOG_LEVEL: 'info' }, { readyPath: '/health' })
    await until(async () => /connection was refused/.test((await ready(server!.url)).body.message ?? ''))
    const down = await ready(server.url)
    assert.equal(down.status, 503)
    assert.match(down.body.message ?? '', /the backend cannot serve: PostgreSQL is unavailable: the connection was refused/)
    assert.match(server.logs(), /the database is unreachable, retrying \(opening the services\): PostgreSQL is unavailable/)
    const search = await new Api(httpTransport(server.url)).get('/v1/search?q=cat')
    assertUnavailable(search, 'search while the database was down at start')
    assert.doesNotMatch(search.json.message, /model/, 'the cause is the database, not the model')
    assert.equal(server.child.exitCode, null, 'no crash while the database is down')

    await db.serverUp!()
    await until(async () => (await ready(server!.url)).status === 200)
    assert.equal((await fetch(`${server.url}/v1/search?q=cat`)).status, 200)
  })

  it('a crash of the database mid-run: every route answers 503 with Retry-After, an upload leaves nothing, all serve again once it is back', { skip }, async () => {
    assert.ok(server !== undefined)
    const api = new Api(httpTransport(server.url))
    const stored = await api.upload([{ bytes: await distinctImage(1), id: 'kept', filename: 'kept.png' }])
    assert.equal(stored.status, 200, stored.text)
    const refused = await distinctImage(2)
    await db.serverDown!('immediate')
    const answers: Array<[string, Res]> = [
      ['GET /v1/search', await api.get('/v1/search?q=cat')],
      ['POST /v1/search', await api.search({ query: [{ text: 'cat' }] })],
      ['POST /v1/images', await api.upload([{ bytes: refused, id: 'refused', filename: 'refused.png' }])],
      ['GET /v1/images/:id', await api.get('/v1/images/kept')],
      ['GET /v1/info', await api.get('/v1/info')],
      ['POST /v1/index-jobs', await api.post('/v1/index-jobs', { directory: 'pics' })],
      ['GET /v1/index-jobs', await api.get('/v1/index-jobs')]
    ]
    for (const [what, res] of answers) assertUnavailable(res, what)
    const r = await ready(server.url)
    assert.equal(r.status, 503)
    assert.match(r.body.message ?? '', /the backend cannot serve/)
    await db.serverUp!()
    await until(async () => (await ready(server!.url)).status === 200, 30_000)
    assert.equal((await api.get('/v1/images/kept')).status, 200, 'the image acknowledged before the crash survived it')
    assert.equal((await api.get('/v1/images/refused')).status, 404, 'the upload refused during the outage left nothing behind')
    const rows = await withDatabase(db.url, async (c) => (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM images')).rows[0]!.n)
    assert.equal(rows, 1)
    assert.equal((await api.get('/v1/search?q=cat')).status, 200)
    assert.equal(server.child.exitCode, null)
  })
})
