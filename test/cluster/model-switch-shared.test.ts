/**
 * A model switch's re-embedding shared by the processes that embed, with real processes on one real
 * PostgreSQL: two API replicas (INDEX_WORKER=off) and one index worker (`npm run worker`).
 *   - the API that starts the switch leads it; the worker loads the new model and embeds batches
 *     beside it; each row is embedded by one process only (the per-process counts in the logs add
 *     up to the rows); the other API, doing no index work, embeds none; searches answer throughout;
 *   - a cancel on the other replica stops the leader's and the worker's batches;
 *   - a worker killed (SIGKILL) while it holds a claim: once the claim lapses (INDEX_RETRY_AFTER / 2)
 *     the leader claims those rows, and the switch completes.
 * Skips, with the reason, where there is no PostgreSQL server.
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { startTestPostgres } from '../../scripts/lib/postgres-server.js'
import { TIMEOUT } from '../helpers/timeouts.js'
import { sleep, type Api } from '../reliability/support/api.js'
import { tempDirs } from '../reliability/support/servers.js'
import { type ApiProcess, type ClusterSettings, searchThroughout, startApi, startWorker, stopCluster, waitUntil, withDatabase, type WorkerProcess, writeImages } from './support/cluster.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const TINY = 'align-random-tiny-80'
const MINI = 'align-mini-v3'
const IMAGES = 64

const pg = await startTestPostgres({ engine: 'server' })
const skip = 'url' in pg ? undefined : `no PostgreSQL: ${pg.skip}`

interface Models { active: { modelId: string }, standby: null | { modelId: string, state: string } }
interface LogLine { msg?: string, time?: number, model?: string, images?: number, from?: string[], state?: string }

/** the log's JSON lines whose message starts with `prefix` */
function linesOf (logs: string, prefix: string): LogLine[] {
  return logs.split('\n').flatMap((line) => {
    if (!line.includes(prefix)) return []
    try {
      const entry = JSON.parse(line) as LogLine
      return entry.msg?.startsWith(prefix) === true ? [entry] : []
    } catch { return [] }
  })
}

/** the images a process says it embedded for the switch to `model` ("model switch: embedded N images …") */
function embeddedFor (logs: string, model: string): number {
  return linesOf(logs, 'model switch: embedded ').filter((l) => l.model === model).reduce((n, l) => n + (l.images ?? 0), 0)
}

describe('model switch shared by the processes that embed: two APIs and a worker on one PostgreSQL', { timeout: TIMEOUT.soak, ...(skip === undefined ? {} : { skip }) }, () => {
  const dirs = tempDirs('align-cluster-switch-shared-')
  const settings: ClusterSettings = {
    databaseUrl: 'url' in pg ? pg.url : '',
    dirs,
    // a claim lapses after half of it: 3 s
    retryAfterMs: 6000,
    batchSize: 8,
    // info: the per-process counts of the switch
    env: { MODEL_DIR: path.join(ROOT, 'models/align-mini'), MODELS_DIR: ROOT, LOG_LEVEL: 'info' }
  }
  let apis: ApiProcess[] = []
  let worker: WorkerProcess | undefined
  const api = (i: number): Api => apis[i]!.api
  const active = async (via: Api): Promise<string> => ((await via.get('/v1/models')).json as Models).active.modelId
  /** the live claims of process `pid`; `until`: when they lapse (the database's clock, ms since the epoch) */
  const claimsOf = async (pid: number): Promise<{ n: number, until: number }> => await withDatabase(settings.databaseUrl, async (db) => (await db.query<{ n: number, until: number }>(
    `SELECT count(*)::int AS n, coalesce(extract(epoch FROM max(expires_at)) * 1000, 0)::float8 AS until
       FROM model_switch_claims WHERE holder LIKE $1 AND expires_at > clock_timestamp()`, [`%:${pid}:%`])).rows[0]!)
  /**
   * Freezes (SIGSTOP) process `pid` while it holds a live claim, seen in the database both before
   * and after the freeze (so it cannot have stored the batch meanwhile); resolves with the claims and
   * when it froze.
   */
  const freezeHoldingClaim = async (pid: number): Promise<{ held: { n: number, until: number }, frozenAt: number }> => {
    let held = { n: 0, until: 0 }
    let frozenAt = 0
    await waitUntil('the worker holds a claim when frozen', async () => {
      if ((await claimsOf(pid)).n === 0) return false
      frozenAt = Date.now()
      process.kill(pid, 'SIGSTOP')
      held = await claimsOf(pid)
      if (held.n > 0) return true
      process.kill(pid, 'SIGCONT')
      return false
    }, 60_000)
    return { held, frozenAt }
  }

  before(async () => {
    await writeImages(dirs.importDir, 'a', 0, IMAGES)
    ;[apis, worker] = await Promise.all([Promise.all([startApi(settings, 'api-1'), startApi(settings, 'api-2')]), startWorker(settings, 'worker-1')])
    const res = await api(0).post('/v1/index-jobs', { directory: 'a' })
    assert.equal(res.status, 202, res.text)
    await waitUntil('the images are indexed', async () => {
      const view = (await api(0).get(`/v1/index-jobs/${res.json.jobId as string}`)).json as { status: string }
      return view.status === 'done' || view.status === 'failed'
    })
    assert.equal((await api(0).counts()).images, IMAGES)
  })

  after(async () => { await stopCluster(apis, worker, 'url' in pg ? pg : {}, dirs) })

  it('the leader and the worker each embed a share, every row once; the API without index work embeds none; searches answer throughout', async (t) => {
    const searching = searchThroughout([api(0), api(1)])
    const started = await api(0).post('/v1/models/switch', { modelDir: 'test/fixtures/align-tiny' })
    assert.equal(started.status, 202, started.text)
    await waitUntil('the swap', async () => await active(api(0)) === TINY)
    await waitUntil('the other API follows the swap', async () => await active(api(1)) === TINY, 5000)
    const { answered, failures } = await searching.stop()
    assert.ok(answered > 0)
    assert.deepEqual(failures, [], 'every search on both APIs answered during the switch')

    // a helper logs its count once it finds nothing left to claim, which may be just after the swap
    const counts = (): number[] => [apis[0]!.server.logs(), apis[1]!.server.logs(), worker!.server.logs()].map((l) => embeddedFor(l, TINY))
    await waitUntil('every process has logged what it embedded', async () => counts().reduce((a, b) => a + b) >= IMAGES, 10_000).catch(() => {})
    const [leader, other, byWorker] = counts() as [number, number, number]
    t.diagnostic(`embedded for the switch: leader ${leader}, worker ${byWorker}, other API ${other} of ${IMAGES} images; ${answered} searches answered meanwhile`)
    assert.equal(other, 0, 'the API replica with INDEX_WORKER=off embeds nothing for a switch it does not lead')
    assert.ok(leader > 0, `the leading API embedded ${leader} images`)
    assert.ok(byWorker > 0, `the worker embedded ${byWorker} images (leader: ${leader})`)
    assert.equal(leader + byWorker, IMAGES, `each image embedded once: leader ${leader} + worker ${byWorker}`)
    const nulls = await withDatabase(settings.databaseUrl, async (db) => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM images WHERE embedding IS NULL')).rows[0]!.n)
    assert.equal(nulls, 0, 'every image has the new model\'s vector')
  })

  it('a cancel on the other replica stops the batches of the leader and of a worker', async () => {
    // the previous model (align-mini) is on standby: drop it, and switch back to it from nothing
    assert.equal((await api(0).del('/v1/models/standby')).status, 204)
    const since = Date.now()
    const started = await api(0).post('/v1/models/switch', { modelDir: 'models/align-mini' })
    assert.equal(started.status, 202, started.text)
    const batches = (): LogLine[] => linesOf(worker!.server.logs(), 'model switch: batch embedded').filter((l) => l.model === MINI && (l.time ?? 0) >= since)
    await waitUntil('the worker embeds a batch', async () => batches().length > 0, 60_000)
    // while the worker is frozen holding a claim the switch cannot complete (for the lease at least): the cancel meets it under way
    const workerPid = worker!.server.child.pid!
    await freezeHoldingClaim(workerPid)
    const cancelled = await api(1).del('/v1/models/standby')
    process.kill(workerPid, 'SIGCONT')
    assert.equal(cancelled.status, 204, cancelled.text)
    // (the log comes through a pipe of its own: it may arrive after the answer)
    await waitUntil('the other replica logs the cancel', async () => linesOf(apis[1]!.server.logs(), 'model switch ').some((l) => (l.time ?? 0) >= since && (l.msg === 'model switch cancelled' || l.msg === 'standby model deleted')), 10_000)
    assert.ok(linesOf(apis[1]!.server.logs(), 'model switch cancelled').some((l) => (l.time ?? 0) >= since), 'the cancel met the switch under way')

    await waitUntil('the leader stops', async () => {
      const m = (await api(0).get('/v1/models')).json as Models & { running: boolean }
      return !m.running && m.standby === null
    }, 30_000)
    // the worker's fill ends (it logs its count on the way out) and embeds nothing after it
    const ended = async (): Promise<LogLine | undefined> => linesOf(worker!.server.logs(), 'model switch: embedded ').find((l) => l.model === MINI && (l.time ?? 0) >= since)
    await waitUntil('the worker\'s batches stop', async () => await ended() !== undefined, 30_000)
    const last = (await ended())!
    await sleep(1000)
    assert.deepEqual(batches().filter((l) => (l.time ?? 0) > last.time!), [], 'no batch after the worker\'s fill ended')
    const left = await withDatabase(settings.databaseUrl, async (db) => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM model_switch_claims')).rows[0]!.n)
    assert.equal(left, 0, 'no claim is left')
    assert.equal(await active(api(0)), TINY, 'the serving model is unchanged')
  })
  it('a worker killed while it holds a claim: the leader claims its rows once the claim lapses, and the switch completes', async (t) => {
    const workerPid = worker!.server.child.pid!
    // a switch back to align-mini that must embed every image again (the previous vectors were dropped by the cancel)
    const started = await api(0).post('/v1/models/switch', { modelDir: 'models/align-mini' })
    assert.equal(started.status, 202, started.text)
    // killed while it holds a claim (frozen first, so it cannot store the batch before the kill)
    const { held, frozenAt } = await freezeHoldingClaim(workerPid)
    await worker!.server.kill()
    const killedAt = Date.now()
    assert.notEqual(await active(api(0)), MINI, 'the switch waits for the rows the dead worker held')

    await waitUntil('the switch completes', async () => await active(api(0)) === MINI, 60_000)
    t.diagnostic(`the killed worker held ${held.n} rows; the switch completed ${Date.now() - killedAt} ms after the kill (claim lease ${settings.retryAfterMs / 2} ms)`)
    const reclaims = linesOf(apis[0]!.server.logs(), 'model switch: claimed rows another process had claimed')
      .filter((l) => (l.time ?? 0) >= frozenAt && l.from?.some((h) => h.includes(`:${workerPid}:`)) === true)
    assert.ok(reclaims.length > 0, 'the leader claimed the rows the killed worker held')
    // not before the claim lapsed (one machine: the database and the leader read the same clock)
    assert.ok(reclaims.every((l) => (l.time ?? 0) >= held.until), `claimed again at ${reclaims.map((l) => l.time).join(', ')}, the claim lapsed at ${held.until}`)
    assert.ok(embeddedFor(apis[0]!.server.logs(), MINI) >= held.n, 'the leader embedded them')
    const state = await withDatabase(settings.databaseUrl, async (db) => (await db.query<{ nulls: number, claims: number }>(
      'SELECT (SELECT count(*)::int FROM images WHERE embedding IS NULL) AS nulls, (SELECT count(*)::int FROM model_switch_claims) AS claims')).rows[0]!)
    assert.deepEqual(state, { nulls: 0, claims: 0 }, 'every image has the new model\'s vector; no claim is left')
  })
})
