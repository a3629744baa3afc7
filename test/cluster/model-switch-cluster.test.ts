/**
 * The model switch in cluster mode, with real processes on one real PostgreSQL: two API replicas
 * (INDEX_WORKER=off) and one index worker (`npm run worker`), all with MODELS_DIR.
 *   - a switch started on one API: both APIs answer every search meanwhile;
 *   - the worker loads the new model from the folder the database's record names, so an index job
 *     run during the switch stores both models' vectors;
 *   - after the swap the other API answers with the new model, and the worker indexes with it.
 * Skips, with the reason, where there is no PostgreSQL server.
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { startTestPostgres } from '../../scripts/lib/postgres-server.js'
import { TIMEOUT } from '../helpers/timeouts.js'
import { type Api } from '../reliability/support/api.js'
import { tempDirs } from '../reliability/support/servers.js'
import { type ApiProcess, type ClusterSettings, searchThroughout, startApi, startWorker, stopCluster, waitUntil, withDatabase, type WorkerProcess, writeImages } from './support/cluster.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const TINY = 'align-random-tiny-80'

const pg = await startTestPostgres({ engine: 'server' })
const skip = 'url' in pg ? undefined : `no PostgreSQL: ${pg.skip}`

interface Models { active: { modelId: string, dim: number }, standby: null | { modelId: string, state: string }, running: boolean }

describe('model switch in cluster mode: two APIs and a worker on one PostgreSQL', { timeout: TIMEOUT.soak, ...(skip === undefined ? {} : { skip }) }, () => {
  const dirs = tempDirs('align-cluster-switch-')
  const settings: ClusterSettings = {
    databaseUrl: 'url' in pg ? pg.url : '',
    dirs,
    retryAfterMs: 6000,
    batchSize: 8,
    env: { MODEL_DIR: path.join(ROOT, 'models/align-mini'), MODELS_DIR: ROOT }
  }
  let apis: ApiProcess[] = []
  let worker: WorkerProcess | undefined
  const api = (i: number): Api => apis[i]!.api
  const jobDone = async (via: Api, directory: string): Promise<{ indexed: number, failed: number }> => {
    const res = await via.post('/v1/index-jobs', { directory })
    assert.equal(res.status, 202, res.text)
    const id = res.json.jobId as string
    let view: { status: string, indexed: number, failed: number } = { status: 'queued', indexed: 0, failed: 0 }
    await waitUntil(`job ${directory} finishes`, async () => {
      view = (await via.get(`/v1/index-jobs/${id}`)).json as typeof view
      return view.status === 'done' || view.status === 'failed'
    })
    assert.equal(view.status, 'done')
    return view
  }

  before(async () => {
    await writeImages(dirs.importDir, 'a', 0, 48)
    await writeImages(dirs.importDir, 'b', 100, 16)
    await writeImages(dirs.importDir, 'c', 200, 16)
    ;[apis, worker] = await Promise.all([Promise.all([startApi(settings, 'api-1'), startApi(settings, 'api-2')]), startWorker(settings, 'worker-1')])
  })

  after(async () => { await stopCluster(apis, worker, 'url' in pg ? pg : {}, dirs) })

  it('searches on both APIs answer all through the switch; the worker embeds a job run meanwhile with both models, and indexes with the new one after the swap', async () => {
    assert.equal((await jobDone(api(0), 'a')).indexed, 48)
    const searching = searchThroughout([api(0), api(1)])
    const started = await api(0).post('/v1/models/switch', { modelDir: 'test/fixtures/align-tiny' })
    assert.equal(started.status, 202, started.text)
    // the worker follows the record: it loads the new model and embeds the next job with both
    await waitUntil('the worker loads the standby model', async () => /a standby model was set by another process/.test(worker!.server.logs()))
    const b = await jobDone(api(1), 'b')
    assert.deepEqual([b.indexed, b.failed], [16, 0])
    await waitUntil('the swap', async () => ((await api(0).get('/v1/models')).json as Models).active.modelId === TINY)
    await waitUntil('the other API follows the swap', async () => ((await api(1).get('/v1/models')).json as Models).active.modelId === TINY, 5000)
    const { answered, failures } = await searching.stop()
    assert.ok(answered > 0)
    assert.deepEqual(failures, [], 'every search on both APIs answered during the switch')
    const info = (await api(1).get('/v1/info')).json as { model: { modelId: string, dim: number }, standby: { modelId: string } | null }
    assert.deepEqual([info.model.modelId, info.model.dim], [TINY, 80])
    assert.equal(info.standby?.modelId, 'align-mini-v3')
    // job b's rows reached both models' stores (the worker's writes, or the switch's pass for any it missed)
    const bRows = await withDatabase(settings.databaseUrl, async (db) => (await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM images WHERE source LIKE 'b/%' AND embedding IS NOT NULL AND standby_embedding IS NOT NULL")).rows[0]!.n)
    assert.equal(bRows, 16)
    // after the swap the worker indexes with the new model
    const c = await jobDone(api(1), 'c')
    assert.deepEqual([c.indexed, c.failed], [16, 0], 'the worker indexes with the new model after the swap')
    const hits = await api(1).search({ query: [{ text: 'a red square' }], target: 'images', k: 3 })
    assert.equal(hits.status, 200)
  })
})
