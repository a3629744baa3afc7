/**
 * A server started against PostgreSQL with a password in DATABASE_URL never prints it, on every
 * start-up path that names the database: data of another model (fatal), a role that may not
 * create pgvector (fatal), and a host it cannot reach (one warning per retry), including a
 * password with a raw '/', which a URL parser reads partly as the host's port and path.
 * Skips, with the reason, only where no PostgreSQL server can be started.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { startTestPostgres, type TestPostgres } from '../../scripts/lib/postgres-server.js'
import { openPostgresBackend } from '../../src/backends/postgres/open-postgres-backend.js'
import { withDatabase } from '../cluster/support/cluster.js'
import { startServer } from '../helpers/spawn-server.js'
import { TIMEOUT } from '../helpers/timeouts.js'
import { sleep } from './support/api.js'
import { serviceEnv, tempDirs } from './support/servers.js'

/** the password's parts: none may appear in any output, encoded or not */
const SECRET = 'Sup3rS3cret'
const PASSWORD = `${SECRET}/x@y#z`

const started = await startTestPostgres({ engine: 'server' })
const skip = 'url' in started ? undefined : `no PostgreSQL server: ${started.skip}`

describe('no start-up message names the DATABASE_URL password', { timeout: TIMEOUT.server, ...(skip === undefined ? {} : { skip }) }, () => {
  const pg = started as TestPostgres
  const dirs = tempDirs('align-pg-messages-')
  after(async () => {
    if (skip === undefined) await pg.stop()
    dirs.remove()
  })

  /** `url` as `user` with PASSWORD (percent-encoded, as a URL must carry it), on database `db` */
  const withPassword = (url: string, user: string, db?: string): string => {
    const u = new URL(url)
    u.username = user
    u.password = encodeURIComponent(PASSWORD)
    if (db !== undefined) u.pathname = `/${db}`
    return u.toString()
  }
  const assertNoPassword = (output: string, what: string): void => {
    for (const part of [SECRET, encodeURIComponent(PASSWORD)]) assert.ok(!output.includes(part), `${what}: the output names the password:\n${output.slice(-3000)}`)
  }
  /** the output of a server that must stop at start */
  const refusedStart = async (databaseUrl: string): Promise<string> => {
    const err = await startServer(serviceEnv(dirs, { DATABASE_URL: databaseUrl, DATABASE_POOL_SIZE: '2', INDEX_WORKER: 'off' }), { timeoutMs: 60_000 })
      .then(async (s) => { await s.kill(); return undefined }, (e: Error) => e)
    assert.ok(err !== undefined && /exited before it was ready/.test(err.message), `the server should have stopped at start: ${err?.message.slice(-2000) ?? 'it became ready'}`)
    return err.message
  }

  it('data of another model: the fatal message names both models and the database, not the password', async () => {
    const url = await pg.newDatabase()
    const other = await openPostgresBackend({ databaseUrl: url, poolSize: 1 }, { modelId: 'another-model', dim: 80 })
    await other.close()
    const output = await refusedStart(withPassword(url, 'postgres'))
    assert.match(output, /another-model/)
    assertNoPassword(output, 'another model')
  })

  it('a role that may not create pgvector: the fatal message names the fix and the role, not the password', async (t) => {
    if (pg.kind !== 'cluster') { t.skip('needs our own cluster, where roles may be created'); return }
    await withDatabase(pg.url, async (c) => {
      await c.query('CREATE ROLE plain_msgs LOGIN')
      await c.query('CREATE DATABASE plain_msgs_db OWNER plain_msgs')
    })
    const output = await refusedStart(withPassword(pg.url, 'plain_msgs', 'plain_msgs_db'))
    assert.match(output, /CREATE EXTENSION vector/)
    assertNoPassword(output, 'no pgvector')
  })

  it('an unreachable host, through a password with a raw \'/\' (parsed as a port and a path): the retry warnings name no password', async () => {
    // "postgres://align.invalid:5432/Sup3r…@127.0.0.1:…" (user align.invalid) reads as host align.invalid,
    // port 5432 and a path; .invalid never resolves (RFC 2606)
    const raw = `postgres://align.invalid:5432/${SECRET}@127.0.0.1:${new URL(pg.url).port}/db`
    const server = await startServer(serviceEnv(dirs, { DATABASE_URL: raw, DATABASE_POOL_SIZE: '2', INDEX_WORKER: 'off', LOG_LEVEL: 'info' }), { readyPath: '/health', timeoutMs: 60_000 })
    try {
      const deadline = Date.now() + 30_000
      while (!/cannot connect to PostgreSQL/.test(server.logs()) || !/retrying/.test(server.logs())) {
        assert.ok(Date.now() < deadline, `no connection failure logged within 30 s:\n${server.logs().slice(-2000)}`)
        await sleep(100)
      }
      assertNoPassword(server.logs(), 'unreachable')
    } finally {
      await server.kill()
    }
  })
})
