/**
 * The server over PostgreSQL when the database is down: it starts anyway, /ready answers 503 with
 * the reason, the log says why, and it serves once the database is back, with no restart. The same
 * after a later outage. Needs a server of our own to stop and start (skips with the reason otherwise).
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { startServer, type RunningServer } from '../helpers/spawn-server.js'
import { startTestPostgres, type TestPostgres } from '../../scripts/lib/postgres-server.js'

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
  const pg = await startTestPostgres({ engine: 'server' })
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
    server = await startServer({ DATABASE_URL: db.url, DATA_DIR: dataDir, MODEL_DIR: 'test/fixtures/align-tiny', DEMO_POOL: '', LOG_LEVEL: 'info' }, { readyPath: '/health' })
    await until(async () => /cannot connect/.test((await ready(server!.url)).body.message ?? ''))
    const down = await ready(server.url)
    assert.equal(down.status, 503)
    assert.match(down.body.message ?? '', /the backend cannot serve: cannot connect to PostgreSQL/)
    assert.match(server.logs(), /the database is unreachable, retrying/)
    const search = await fetch(`${server.url}/v1/search?q=cat`)
    assert.equal(search.status, 503, 'requests wait for the database in the one error shape')
    assert.equal(server.child.exitCode, null, 'no crash while the database is down')

    await db.serverUp!()
    await until(async () => (await ready(server!.url)).status === 200)
    assert.equal((await fetch(`${server.url}/v1/search?q=cat`)).status, 200)
  })

  it('after a later outage /ready is 503 with the reason, then 200 again', { skip }, async () => {
    assert.ok(server !== undefined)
    await db.serverDown!()
    await until(async () => (await ready(server!.url)).status === 503)
    assert.match((await ready(server.url)).body.message ?? '', /the backend cannot serve/)
    await db.serverUp!()
    await until(async () => (await ready(server!.url)).status === 200)
    assert.equal(server.child.exitCode, null)
  })
})
