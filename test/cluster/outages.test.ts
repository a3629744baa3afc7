/**
 * Cluster mode through faults, with real processes on a real PostgreSQL run with
 * synchronous_commit=on (an acknowledged commit outlives a crash):
 *   - PostgreSQL crashed (`pg_ctl -m immediate`) in the middle of a job, two APIs and two workers:
 *     searches and uploads answer 503 with Retry-After meanwhile, every replica serves again within
 *     30 s of the restart, and the job ends done with every image stored exactly once;
 *   - a lost host: a worker whose connections go through a proxy that stops forwarding without
 *     closing, just after it locked the job's row in its commit: the server ends its session
 *     (idle-in-transaction timeout), which frees the lock, and another worker finishes the batch
 *     within INDEX_RETRY_AFTER plus the timeouts.
 * Skips, with the reason, where there is no PostgreSQL cluster of our own to crash.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { startTestPostgres, type TestPostgres } from '../../scripts/lib/postgres-server.js'
import { TIMEOUT } from '../helpers/timeouts.js'
import { sleep, type Api, type Res } from '../reliability/support/api.js'
import { distinctImage } from '../reliability/support/images.js'
import { tempDirs } from '../reliability/support/servers.js'
import { batchesIn, startApi, startWorker, storedImages, withDatabase, writeImages, type ApiProcess, type ClusterSettings, type WorkerProcess } from './support/cluster.js'
import { startFreezableProxy, type FreezableProxy } from './support/tcp-proxy.js'

const RETRY_AFTER_MS = 6000
const BATCH = 16
/** the timeouts of every connection here: short, so the lost host's locks go within seconds */
const TIMEOUTS = { PG_STATEMENT_TIMEOUT: '10s', PG_LOCK_TIMEOUT: '2s', PG_IDLE_IN_TRANSACTION_TIMEOUT: '3s', PG_TCP_USER_TIMEOUT: '5s', PG_KEEPALIVE_IDLE: '2s' }
const TIMEOUTS_MS = 10_000 + 2000 + 3000
/** the promise of the issue: every replica serves again this soon after the database is back */
const RECOVERY_MS = 30_000

const started = await startTestPostgres({ engine: 'server', synchronousCommit: true })
const skip = !('url' in started) ? `no PostgreSQL: ${started.skip}` : started.serverDown === undefined ? 'needs a PostgreSQL cluster of its own to crash' : undefined
if (skip !== undefined) console.log(`# cluster fault tests skipped: ${skip}`)

describe('cluster mode through database crashes and lost hosts', { timeout: TIMEOUT.soak, ...(skip === undefined ? {} : { skip }) }, () => {
  const pg = started as TestPostgres
  const dirs = tempDirs('align-outages-')
  const settings: ClusterSettings = { databaseUrl: skip === undefined ? pg.url : '', dirs, retryAfterMs: RETRY_AFTER_MS, batchSize: BATCH, env: TIMEOUTS }
  let apis: ApiProcess[] = []
  let workers: WorkerProcess[] = []
  let proxy: FreezableProxy | undefined
  const api = (i: number): Api => apis[i]!.api
  const db = async <T>(fn: Parameters<typeof withDatabase<T>>[1]): Promise<T> => await withDatabase(settings.databaseUrl, fn)
  const waitUntil = async (what: string, ok: () => Promise<boolean> | boolean, timeoutMs: number, stepMs = 50): Promise<void> => {
    const deadline = Date.now() + timeoutMs
    while (!(await Promise.resolve().then(ok).catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
      await sleep(stepMs)
    }
  }
  const ready = async (url: string): Promise<boolean> => (await fetch(`${url}/ready`, { signal: AbortSignal.timeout(5000) })).status === 200
  const assert503 = (res: Res, what: string): void => {
    assert.equal(res.status, 503, `${what}: ${res.status} ${res.text}`)
    assert.ok(res.headers.get('retry-after') !== null, `${what}: Retry-After`)
    assert.doesNotMatch(res.text, /127\.0\.0\.1|postgres@/, `${what}: no address`)
  }

  before(async () => {
    ;[apis, workers] = await Promise.all([
      Promise.all([startApi(settings, 'api-1'), startApi(settings, 'api-2')]),
      Promise.all([startWorker(settings, 'worker-1'), startWorker(settings, 'worker-2')])
    ])
  })

  after(async () => {
    await Promise.all([...apis, ...workers].map(async (p) => await p.server.kill()))
    await proxy?.close()
    if (skip === undefined) await pg.stop()
    dirs.remove()
  })

  it('PostgreSQL crashed mid-job: 503s with Retry-After meanwhile, every replica serves within 30 s of the restart, the job ends done with every image stored once', async () => {
    const shas = await writeImages(dirs.importDir, 'crash', 0, 160)
    const posted = await api(0).post('/v1/index-jobs', { directory: 'crash' })
    assert.equal(posted.status, 202, posted.text)
    const jobId = posted.json.jobId as string
    await waitUntil('the job has committed a batch', async () => (await api(1).get(`/v1/index-jobs/${jobId}`)).json.done >= BATCH, 60_000)

    await pg.serverDown!('immediate')
    const upload = await distinctImage(50_000, 24)
    for (const [i, via] of [api(0), api(1)].entries()) {
      assert503(await via.get('/v1/search?q=stripes'), `search through api-${i + 1}`)
      assert503(await via.upload([{ bytes: upload, id: `during-outage-${i}`, filename: 'o.png' }]), `upload through api-${i + 1}`)
    }
    await sleep(1000) // the workers meet the outage too
    await pg.serverUp!()
    const upAt = Date.now()

    const urls = [...apis.map((a) => a.server.url), ...workers.map((w) => w.server.url)]
    await waitUntil('every replica and worker is ready', async () => (await Promise.all(urls.map(ready))).every(Boolean), RECOVERY_MS, 100)
    await waitUntil('every API serves a search', async () => (await Promise.all([0, 1].map(async (i) => (await api(i).get('/v1/search?q=stripes')).status))).every((s) => s === 200), RECOVERY_MS, 100)
    const recovered = Date.now() - upAt
    assert.ok(recovered < RECOVERY_MS, `every replica serves ${recovered} ms after the restart`)

    const final = await api(1).waitForJob(jobId, 90_000)
    assert.deepEqual([final.status, final.total, final.done, final.failed], ['done', 160, 160, 0], JSON.stringify(final))
    const stored = await db(async (c) => await storedImages(c, shas))
    assert.deepEqual([stored.of, stored.rows], [160, stored.distinct], 'every image stored exactly once')
    for (const i of [0, 1]) assert.equal((await api(i).get(`/v1/images/during-outage-${i}`)).status, 404, 'the upload answered 503 left nothing behind')
  })

  it('a lost host (its connections stop forwarding, unclosed, inside its commit): another worker finishes the batch within INDEX_RETRY_AFTER plus the timeouts', async () => {
    // the lost host is the only worker when the job starts, so it surely takes a batch
    await Promise.all(workers.map(async (w) => await w.server.kill()))
    proxy = await startFreezableProxy('127.0.0.1', Number(new URL(pg.url).port))
    const lost = await startWorker({ ...settings, databaseUrl: proxy.urlFor(pg.url) }, 'worker-lost')
    workers = [lost]
    const shas = await writeImages(dirs.importDir, 'lost', 10_000, 64)
    // frozen just after it sends the statement with which a batch's commit locks the job's row (completeItems in
    // pg-jobs.ts; pg-boss's fetch and the planner's expand say FOR UPDATE too, hence the whole text): the lock is
    // held, the transaction open
    const frozen = proxy.freezeOn('SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE')
    const posted = await api(0).post('/v1/index-jobs', { directory: 'lost' })
    assert.equal(posted.status, 202, posted.text)
    const jobId = posted.json.jobId as string
    await Promise.race([frozen, sleep(60_000).then(() => { throw new Error('the lost worker never locked the job row: has completeItems\' SQL changed?') })])
    const frozenAt = Date.now()
    await sleep(500) // its log lines reach us
    const { started: held } = batchesIn(lost.server.logs())
    assert.ok(held.length >= 1, 'the lost worker held a batch when its host went')

    const other = await startWorker(settings, 'worker-other')
    workers.push(other)
    const final = await api(1).waitForJob(jobId, 120_000)
    const took = Date.now() - frozenAt
    assert.deepEqual([final.status, final.total, final.done, final.failed], ['done', 64, 64, 0], JSON.stringify(final))
    const stored = await db(async (c) => await storedImages(c, shas))
    assert.deepEqual([stored.of, stored.rows], [64, stored.distinct], 'every image stored exactly once')
    const { committed } = batchesIn(other.server.logs())
    assert.ok(held.some((id) => committed.includes(id)), 'the other worker committed the batch the lost one held')
    // the bound: the lost batch expires (INDEX_RETRY_AFTER), its session is ended (timeouts); twice that leaves room
    // for the other worker's start and its own work on a busy machine, as the SIGKILL test does
    assert.ok(took < 2 * (RETRY_AFTER_MS + TIMEOUTS_MS), `done ${took} ms after the host was lost`)
    console.log(`# lost host: job done ${took} ms after the freeze (INDEX_RETRY_AFTER ${RETRY_AFTER_MS} ms, timeouts ${TIMEOUTS_MS} ms)`)
  })
})
