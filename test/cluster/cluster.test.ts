/**
 * Cluster mode's promises, with real processes on one real PostgreSQL: two API replicas
 * (INDEX_WORKER=off) and two index workers (`npm run worker`), as in the README's cluster steps.
 *   - a job of 520 images, one worker SIGKILLed in the middle of a batch: the job ends done, every
 *     image stored exactly once, the dead worker's batch retried by another within INDEX_RETRY_AFTER;
 *   - both APIs give the same progress and the same search answers;
 *   - a cancel sent to the other API stops the job on every worker;
 *   - killing every process and starting them again keeps everything, and a job cut by the crash
 *     finishes.
 * Skips, with the reason, where there is no PostgreSQL server (PGlite serves one connection).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { startTestPostgres } from '../../scripts/lib/postgres-server.js'
import { TIMEOUT } from '../helpers/timeouts.js'
import { sleep, type Api, type Hit, type JobViewT } from '../reliability/support/api.js'
import { distinctImage } from '../reliability/support/images.js'
import { tempDirs } from '../reliability/support/servers.js'
import { QUEUES } from '../../src/backends/index-queue.js'
import { QUEUE_SCHEMA } from '../../src/backends/postgres/queue/pg-index-queue.js'
import { batchesIn, startApi, startWorker, storedImages, withDatabase, writeImages, type ApiProcess, type ClusterSettings, type WorkerProcess } from './support/cluster.js'

const RETRY_AFTER_MS = 6000
const BATCH = 16
const JOB_WAIT_MS = 120_000

const pg = await startTestPostgres({ engine: 'server' })
const skip = 'url' in pg ? undefined : `no PostgreSQL: ${pg.skip}`
if (skip !== undefined) console.log(`# cluster tests skipped: ${skip}`)

describe('cluster mode: two API replicas and two index workers on one PostgreSQL', { timeout: TIMEOUT.soak, ...(skip === undefined ? {} : { skip }) }, () => {
  const dirs = tempDirs('align-cluster-')
  const settings: ClusterSettings = { databaseUrl: 'url' in pg ? pg.url : '', dirs, retryAfterMs: RETRY_AFTER_MS, batchSize: BATCH }
  const sets: Record<'a' | 'b' | 'c', string[]> = { a: [], b: [], c: [] }
  let apis: ApiProcess[] = []
  let workers: WorkerProcess[] = []
  const db = async <T>(fn: Parameters<typeof withDatabase<T>>[1]): Promise<T> => await withDatabase(settings.databaseUrl, fn)
  const api = (i: number): Api => apis[i]!.api

  const startAll = async (): Promise<void> => {
    ;[apis, workers] = await Promise.all([
      Promise.all([startApi(settings, 'api-1'), startApi(settings, 'api-2')]),
      Promise.all([startWorker(settings, 'worker-1'), startWorker(settings, 'worker-2')])
    ])
  }
  const post = async (via: Api, directory: string): Promise<string> => {
    const res = await via.post('/v1/index-jobs', { directory })
    assert.equal(res.status, 202, res.text)
    return res.json.jobId as string
  }
  const view = async (via: Api, id: string): Promise<JobViewT> => (await via.get(`/v1/index-jobs/${id}`)).json as JobViewT
  const waitUntil = async (what: string, ok: () => Promise<boolean> | boolean, timeoutMs = JOB_WAIT_MS, stepMs = 10): Promise<void> => {
    const deadline = Date.now() + timeoutMs
    while (!(await ok())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
      await sleep(stepMs)
    }
  }

  before(async () => {
    // a: the SIGKILL job, b: the cancelled job, c: the job cut by the restart
    sets.a = await writeImages(dirs.importDir, 'a', 0, 520)
    sets.b = await writeImages(dirs.importDir, 'b', 1000, 320)
    sets.c = await writeImages(dirs.importDir, 'c', 2000, 200)
    await startAll()
  })

  after(async () => {
    await Promise.all([...apis, ...workers].map(async (p) => await p.server.kill()))
    if ('url' in pg) await pg.stop()
    dirs.remove()
  })

  it('a worker SIGKILLed in the middle of a batch: another retries it within INDEX_RETRY_AFTER, the job ends done, every image stored once', async () => {
    const jobId = await post(api(0), 'a')
    const victim = workers[0]!
    // kill the worker just after it starts a batch, once it has committed one (so the job is planned and running)
    await waitUntil('worker-1 starts a batch after committing one', () => {
      const { started, committed } = batchesIn(victim.server.logs())
      return committed.length >= 1 && started.some((id) => !committed.includes(id))
    })
    await victim.server.kill()
    const killedAt = Date.now()
    const { started, committed } = batchesIn(victim.server.logs())
    const cut = started.filter((id) => !committed.includes(id))
    assert.ok(cut.length > 0, 'worker-1 died holding a batch')

    const final = await api(1).waitForJob(jobId, JOB_WAIT_MS)
    assert.deepEqual([final.status, final.total, final.done, final.failed], ['done', 520, 520, 0], JSON.stringify(final))
    assert.deepEqual(await view(api(0), jobId), await view(api(1), jobId), 'both replicas give the same progress')
    const stored = await db(async (c) => await storedImages(c, sets.a))
    assert.deepEqual(stored, { rows: 520, distinct: 520, of: 520 }, 'every image stored exactly once')

    const retried = await db(async (c) => (await c.query<{ state: string, retry_count: number, completed_on: Date }>(
      `SELECT state, retry_count, completed_on FROM ${QUEUE_SCHEMA}.job WHERE name = $1 AND id = ANY($2::uuid[])`, [QUEUES.batch, cut])).rows)
    assert.equal(retried.length, cut.length)
    for (const m of retried) {
      assert.equal(m.state, 'completed')
      assert.ok(m.retry_count >= 1, 'the batch was taken again after its worker died')
      // the bound is the configured one; twice it leaves room for the retried batch's own work on a busy machine
      assert.ok(m.completed_on.getTime() - killedAt < 2 * RETRY_AFTER_MS, `retried ${m.completed_on.getTime() - killedAt} ms after the kill`)
    }
    const metrics = await (await fetch(`${workers[1]!.server.url}/metrics`)).text()
    const committedByTwo = Number(/^align_index_batches_total\{outcome="committed"\} (\d+)/m.exec(metrics)?.[1] ?? 0)
    assert.ok(committedByTwo >= cut.length, `worker-2 reports the batches it committed on /metrics (${committedByTwo})`)
    workers[0] = await startWorker(settings, 'worker-1b')
  })

  it('both APIs give identical search answers, and what one acknowledges the other serves at once', async () => {
    const someId = await db(async (c) => (await c.query<{ id: string }>('SELECT id FROM images WHERE sha256 = $1', [sets.a[7]])).rows[0]!.id)
    const queries = [
      { query: [{ text: 'red and white stripes' }], k: 10 },
      { query: [{ text: 'a blue circle' }, { text: 'green', weight: -0.5 }], k: 25 },
      { query: [{ imageId: someId }], k: 10 }
    ]
    for (const q of queries) {
      const [one, two] = await Promise.all([api(0).hits(q), api(1).hits(q)])
      assert.equal(one.length, q.k)
      assert.deepEqual(one, two, `same answer to ${JSON.stringify(q.query)}`)
    }

    const [added] = await api(0).uploadOk([{ bytes: await distinctImage(9999, 24), filename: 'sync.png', metadata: { via: 'sync-upload' } }])
    assert.equal(added?.status, 'indexed')
    const found = await api(1).hits({ query: [{ text: 'stripes' }], k: 1, filter: { via: 'sync-upload' } })
    assert.equal(found[0]?.id, added!.id, 'an upload acknowledged by one replica is found through the other right away')
    assert.equal((await api(1).get(`/v1/images/${added!.id}/thumbnail`)).status, 200, 'any replica serves any thumbnail')
    assert.equal((await api(1).del(`/v1/images/${added!.id}`)).status, 204)
    assert.equal((await api(0).get(`/v1/images/${added!.id}`)).status, 404)
    const after: Hit[] = await api(0).hits({ query: [{ text: 'a blue circle' }], k: 600 })
    assert.ok(after.every((h) => h.id !== added!.id), 'a delete acknowledged by one replica is gone from the other')
  })

  it('a cancel sent to the other API stops the job on every worker', async () => {
    const jobId = await post(api(0), 'b')
    await waitUntil('job b has committed a batch', async () => (await view(api(1), jobId)).done >= BATCH, JOB_WAIT_MS, 50)
    const res = await api(1).del(`/v1/index-jobs/${jobId}`)
    assert.equal(res.status, 200, res.text)
    assert.equal(res.json.status, 'cancelled')
    const atCancel = res.json.done as number
    // every batch message of the job is worked off (those in hand finish, the rest are skipped) and nothing moves after
    await waitUntil('the queue holds no batch of job b', async () => await db(async (c) => (await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${QUEUE_SCHEMA}.job WHERE name = $1 AND data->>'jobId' = $2 AND state < 'completed'`, [QUEUES.batch, jobId])).rows[0]!.n === 0), JOB_WAIT_MS, 200)
    const settled = await view(api(0), jobId)
    const inHand = workers.length * 2 * BATCH // two batches per worker may have been running at the cancel
    assert.equal(settled.status, 'cancelled')
    assert.ok(settled.done < settled.total && settled.done <= atCancel + inHand, `done ${settled.done} of ${settled.total}, ${atCancel} at the cancel`)
    assert.equal((await db(async (c) => await storedImages(c, sets.b))).of, settled.done, 'the images stored are the items done, no more')
    await sleep(2 * RETRY_AFTER_MS / 3)
    assert.deepEqual(await view(api(1), jobId), settled, 'nothing moves after the cancel')
  })

  it('every process killed in the middle of a job and started again: everything is kept, and the job finishes', async () => {
    const jobs = (await api(0).get('/v1/index-jobs')).json.jobs as JobViewT[]
    const before = await db(async (c) => await storedImages(c))
    const probe = await db(async (c) => (await c.query<{ id: string }>('SELECT id FROM images WHERE sha256 = $1', [sets.a[300]])).rows[0]!.id)
    const probeHits = await api(0).hits({ query: [{ imageId: probe }], k: 5 })

    const jobId = await post(api(1), 'c')
    await waitUntil('job c has committed a batch', async () => (await view(api(0), jobId)).done >= BATCH, JOB_WAIT_MS, 20)
    await Promise.all([...apis, ...workers].map(async (p) => await p.server.kill()))
    await startAll()

    const final = await api(0).waitForJob(jobId, JOB_WAIT_MS)
    assert.deepEqual([final.status, final.done, final.failed], ['done', 200, 0], JSON.stringify(final))
    assert.deepEqual(await db(async (c) => await storedImages(c)), { rows: before.rows + 200, distinct: before.distinct + 200, of: 0 })
    const jobsAfter = (await api(1).get('/v1/index-jobs')).json.jobs as JobViewT[]
    assert.deepEqual(jobsAfter.filter((j) => j.id !== jobId), jobs, 'every earlier job as it was')
    assert.deepEqual((await api(1).hits({ query: [{ imageId: probe }], k: 5 })).slice(0, 1), probeHits.slice(0, 1))
  })
})
