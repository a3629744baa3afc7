/**
 * The durability promises of durability.test.ts, in cluster mode: API and index-worker processes
 * on a real PostgreSQL run with synchronous_commit=on (DATABASE_URL). What the API acknowledged
 * (uploads, deletes) survives a SIGKILL of every process in the middle of a directory job; the job
 * resumes and ends done with every image stored once, and running it again stores nothing twice;
 * an upload answered the moment the API is SIGKILLed is stored. Also what every process started
 * against PostgreSQL must not do: print pg's DeprecationWarning, or count(*) its tables to log
 * "services ready". Each fault test within TIMEOUT.fault, process starts included.
 * Skips, with the reason, only where no PostgreSQL server can be started.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { startTestPostgres, type TestPostgres } from '../../scripts/lib/postgres-server.js'
import { startApi, startWorker, storedImages, withDatabase, writeImages, type ApiProcess, type ClusterSettings, type WorkerProcess } from '../cluster/support/cluster.js'
import type { RunningServer } from '../helpers/spawn-server.js'
import { TIMEOUT } from '../helpers/timeouts.js'
import { sleep, type Api, type JobViewT } from './support/api.js'
import { distinctImage } from './support/images.js'
import { KILL_IMAGES_PER_ROUND, uploadUntilKilled } from './support/kill.js'
import { tempDirs } from './support/servers.js'

const JOB_IMAGES = 240
const BATCH = 16
/** short, so a batch held by a SIGKILLed worker is retried within the test's bound */
const RETRY_AFTER_MS = 6000
/** API SIGKILLs, each on an acknowledgement: three fit TIMEOUT.fault with the restarts (an API start takes about 7 s here) */
const KILL_ROUNDS = 3
/** the planner's estimate the "services ready" test plants: above ESTIMATE_FROM (pg-collection.ts) */
const PLANTED_ESTIMATE = 250_000

const started = await startTestPostgres({ engine: 'server', synchronousCommit: true })
const skip = 'url' in started ? undefined : `no PostgreSQL server: ${started.skip}`
if (skip !== undefined) console.log(`# PostgreSQL durability tests skipped: ${skip}`)

describe('durability in cluster mode (PostgreSQL, synchronous_commit=on)', { timeout: TIMEOUT.soak, ...(skip === undefined ? {} : { skip }) }, () => {
  const pg = started as TestPostgres
  const dirs = tempDirs('align-durability-pg-')
  const settings: ClusterSettings = { databaseUrl: skip === undefined ? pg.url : '', dirs, retryAfterMs: RETRY_AFTER_MS, batchSize: BATCH }
  /** every process this suite started, for the output checks */
  const spawned: RunningServer[] = []
  let api: ApiProcess | undefined
  let worker: WorkerProcess | undefined
  /** every image id the API acknowledged as stored and never deleted */
  const acked: string[] = []
  const db = async <T>(fn: Parameters<typeof withDatabase<T>>[1]): Promise<T> => await withDatabase(settings.databaseUrl, fn)
  const up = async (which: 'api' | 'both', env: Record<string, string> = {}): Promise<Api> => {
    const s = { ...settings, env }
    ;[api, worker] = await Promise.all([startApi(s, 'api'), which === 'both' ? startWorker(s, 'worker') : Promise.resolve(worker)])
    spawned.push(api.server, ...(which === 'both' && worker !== undefined ? [worker.server] : []))
    return api.api
  }
  const killAll = async (): Promise<void> => { await Promise.all([api?.server.kill(), worker?.server.kill()]) }
  const upload = async (via: Api, prefix: string, from: number, n: number): Promise<void> => {
    const files = await Promise.all(Array.from({ length: n }, async (_, i) => ({ id: `${prefix}-${i}`, bytes: await distinctImage(from + i, 48) })))
    for (const it of await via.uploadOk(files)) {
      assert.equal(it.status, 'indexed', JSON.stringify(it))
      acked.push(it.id)
    }
  }

  before(async () => {
    if (skip !== undefined) return
    // a crash test on a server that may lose acknowledged commits would prove nothing
    const sync = await db(async (c) => (await c.query<{ synchronous_commit: string }>('SHOW synchronous_commit')).rows[0]?.synchronous_commit)
    assert.equal(sync, 'on', 'the durability tests need a PostgreSQL with synchronous_commit=on')
  })

  after(async () => {
    await killAll()
    if (skip === undefined) await pg.stop()
    dirs.remove()
  })

  it('a SIGKILL of the API and the worker mid-job loses nothing acknowledged; the job resumes, ends done, and stores each image once', { timeout: TIMEOUT.fault }, async (t) => {
    const t0 = Date.now()
    const shas = await writeImages(dirs.importDir, 'batch', 0, JOB_IMAGES)
    let via = await up('both')
    await upload(via, 'pre', 1000, 8)
    const posted = await via.post('/v1/index-jobs', { directory: 'batch' })
    assert.equal(posted.status, 202, posted.text)
    const jobId = posted.json.jobId as string
    // writes acknowledged while the job runs count too: an upload, and a delete
    await upload(via, 'mid', 1100, 2)
    assert.equal((await via.del('/v1/images/pre-0')).status, 204)
    acked.splice(acked.indexOf('pre-0'), 1)

    let seen: JobViewT | undefined
    while (seen === undefined) {
      const view = (await via.get(`/v1/index-jobs/${jobId}`)).json as JobViewT
      assert.ok(view.status === 'queued' || view.status === 'running', `the job ended before it could be interrupted: ${JSON.stringify(view)}`)
      if (view.done > 0 && view.done < view.total) seen = view
      else await sleep(10)
    }
    await killAll()
    t.diagnostic(`SIGKILL of the API and the worker at job progress ${seen.done}/${seen.total}`)

    via = await up('both')
    for (const id of acked) assert.equal((await via.get(`/v1/images/${id}`)).status, 200, `acknowledged ${id} after the restart`)
    assert.equal((await via.get('/v1/images/pre-0')).status, 404, 'the acknowledged delete holds after the restart')
    const resumed = (await via.get(`/v1/index-jobs/${jobId}`)).json as JobViewT
    assert.ok(resumed.done >= seen.done, `reported progress went backwards: ${seen.done} before the kill, ${resumed.done} after`)

    const finished = await via.waitForJob(jobId, TIMEOUT.fault)
    assert.deepEqual([finished.status, finished.total, finished.done, finished.failed], ['done', JOB_IMAGES, JOB_IMAGES, 0], JSON.stringify(finished))
    const stored = await db(async (c) => await storedImages(c, shas))
    assert.deepEqual([stored.of, stored.rows, stored.distinct], [JOB_IMAGES, JOB_IMAGES + acked.length, JOB_IMAGES + acked.length], 'every image stored exactly once')
    for (const id of acked) await via.assertFindable(id)

    // the same folder again finds everything stored
    const again = await via.post('/v1/index-jobs', { directory: 'batch' })
    assert.equal(again.status, 202, again.text)
    const second = await via.waitForJob(again.json.jobId as string, TIMEOUT.fault)
    assert.deepEqual([second.status, second.total, second.failed], ['done', JOB_IMAGES, 0], JSON.stringify(second))
    assert.equal((await via.counts()).images, JOB_IMAGES + acked.length, 'a second job over the same files stored something twice')
    t.diagnostic(`${Date.now() - t0} ms, the resumed job ${finished.done}/${finished.total}`)
  })

  it('every upload answered before a SIGKILL of the API is stored and found after a restart', { timeout: TIMEOUT.fault }, async (t) => {
    await killAll()
    const answered: string[] = []
    for (let round = 0; round < KILL_ROUNDS; round++) {
      // made before the API starts, so the client is idle when an answer arrives
      const images = await Promise.all(Array.from({ length: KILL_IMAGES_PER_ROUND }, async (_, i) => await distinctImage(120_000 + round * KILL_IMAGES_PER_ROUND + i, 32)))
      await up('api')
      const got = await uploadUntilKilled(api!.server, api!.api, `kill-${round}`, images)
      t.diagnostic(`round ${round}: ${got.length} acknowledged when the SIGKILL landed`)
      answered.push(...got)
    }
    const via = await up('api')
    const missing: string[] = []
    for (const id of answered) if ((await via.get(`/v1/images/${id}`)).status !== 200) missing.push(id)
    assert.deepEqual(missing, [], `acknowledged uploads missing after a SIGKILL and a restart (of ${answered.length} acknowledged)`)
    for (const id of answered) await via.assertFindable(id)
    acked.push(...answered)
  })

  it('no process started against PostgreSQL prints a DeprecationWarning (pg: a query sent while another runs)', { timeout: TIMEOUT.fault }, async () => {
    // processes of their own, whose whole output is kept: a search, an upload and a job through them
    await killAll()
    const via = await up('both')
    assert.equal((await via.get('/v1/search?q=stripes')).status, 200)
    await upload(via, 'warn', 3000, 2)
    await writeImages(dirs.importDir, 'warn', 5000, BATCH)
    const job = await via.post('/v1/index-jobs', { directory: 'warn' })
    assert.equal(job.status, 202, job.text)
    assert.equal((await via.waitForJob(job.json.jobId as string, TIMEOUT.fault)).status, 'done')
    await killAll()
    const warned = spawned.map((s) => s.logs().split('\n').find((l) => /DeprecationWarning/.test(l))).filter((l) => l !== undefined)
    assert.deepEqual(warned, [], `${warned.length} of ${spawned.length} processes printed a DeprecationWarning`)
  })

  it('"services ready" logs the counts /v1/info shows: the planner\'s estimate on a large table, no count(*)', { timeout: TIMEOUT.fault }, async () => {
    await killAll()
    // the estimate a 250k-row table would have; autovacuum must not correct it meanwhile
    await db(async (c) => {
      await c.query('ALTER TABLE images SET (autovacuum_enabled = false)')
      await c.query('UPDATE pg_class SET reltuples = $1 WHERE oid = \'images\'::regclass', [PLANTED_ESTIMATE])
    })
    try {
      const via = await up('api', { LOG_LEVEL: 'info' })
      const line = api!.server.logs().split('\n').find((l) => l.includes('"services ready"'))
      assert.ok(line !== undefined, 'no "services ready" line')
      const logged = JSON.parse(line) as { images: number, countsExact: boolean }
      const info = (await via.get('/v1/info')).json as { counts: { images: number, exact: boolean } }
      assert.deepEqual([info.counts.images, info.counts.exact], [PLANTED_ESTIMATE, false], '/v1/info shows the estimate')
      assert.deepEqual([logged.images, logged.countsExact], [info.counts.images, info.counts.exact], line)
    } finally {
      await killAll()
      await db(async (c) => { await c.query('ANALYZE images') })
    }
  })
})
