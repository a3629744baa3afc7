/**
 * Durability, against the real server process: what the API acknowledged survives a SIGKILL in
 * the middle of a batch job, and a SIGKILL sent the moment an upload is answered; the job resumes
 * and finishes without indexing anything twice; a corrupt or missing HNSW snapshot is rebuilt from
 * SQLite; and a full disk is an error answer (507), not a crash or a loss.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, statfsSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { TIMEOUT } from '../helpers/timeouts.js'
import { assertError, sleep, type Api, type ItemResult, type JobViewT } from './support/api.js'
import { distinctImage } from './support/images.js'
import { ACKS_BEFORE_KILL, KILL_IMAGES_PER_ROUND, uploadUntilKilled } from './support/kill.js'
import { MODEL_DIR, serviceEnv, spawnService, tempDirs, type Dirs, type SpawnedService } from './support/servers.js'

const JOB_IMAGES = Number(process.env.RELIABILITY_JOB_IMAGES ?? 240)

/** Every file under `dir` whose name ends with `suffix`, recursively. */
function filesEnding (dir: string, suffix: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name)
    if (e.isDirectory()) return filesEnding(full, suffix)
    return e.isFile() && e.name.endsWith(suffix) ? [full] : []
  })
}

/** Asserts every id is stored and findable, the counts match, and no content is stored twice. */
async function assertAllFindable (api: Api, ids: string[]): Promise<void> {
  assert.equal((await api.counts()).images, ids.length, 'GET /v1/info counts every acknowledged image exactly once')
  const shas = new Set<string>()
  for (const id of ids) {
    await api.assertFindable(id)
    shas.add((await api.get(`/v1/images/${encodeURIComponent(id)}`)).json.sha256 as string)
  }
  assert.equal(shas.size, ids.length, 'no two stored images share a sha256')
}

describe('durability', { timeout: TIMEOUT.server * 3 }, () => {
  let dirs: Dirs
  let svc: SpawnedService | undefined
  /** every image id the API has acknowledged as stored */
  const acked: string[] = []
  let env: Record<string, string>

  before(async () => {
    dirs = tempDirs('align-durability-')
    mkdirSync(path.join(dirs.importDir, 'batch'))
    for (let i = 0; i < JOB_IMAGES; i++) {
      writeFileSync(path.join(dirs.importDir, 'batch', `img-${String(i).padStart(4, '0')}.png`), await distinctImage(10_000 + i, 64))
    }
    env = serviceEnv(dirs, { CHECKPOINT_EVERY: '40' })
  })

  after(async () => {
    await svc?.server.kill()
    dirs?.remove()
  })

  async function upload (api: Api, prefix: string, from: number, n: number): Promise<void> {
    const files = await Promise.all(Array.from({ length: n }, async (_, i) => ({ id: `${prefix}-${i}`, bytes: await distinctImage(from + i, 48) })))
    const items = await api.uploadOk(files)
    for (const it of items) {
      assert.equal(it.status, 'indexed', JSON.stringify(it))
      acked.push(it.id)
    }
  }

  test('a SIGKILL mid-job loses nothing acknowledged; the job resumes and completes without double indexing', async (t) => {
    svc = await spawnService(env)
    let api = svc.api
    await upload(api, 'sync-pre', 1000, 8)
    await upload(api, 'sync-pre2', 1100, 4)

    const jobItems = Array.from({ length: JOB_IMAGES }, (_, i) => ({ path: `batch/img-${String(i).padStart(4, '0')}.png`, id: `job-${i}` }))
    const created = await api.post('/v1/index-jobs', { items: jobItems })
    assert.equal(created.status, 202, created.text)
    const jobId = created.json.jobId as string
    // writes acknowledged while the job runs count too
    await upload(api, 'sync-mid', 1200, 2)

    let seen: JobViewT | undefined
    const deadline = Date.now() + TIMEOUT.server
    while (Date.now() < deadline) {
      const view = (await api.get(`/v1/index-jobs/${jobId}`)).json as JobViewT
      if (view.done > 0 && view.done < view.total && view.total === JOB_IMAGES) { seen = view; break }
      assert.ok(view.status === 'queued' || view.status === 'running', `the job ended before it could be interrupted (${JSON.stringify(view)}); raise RELIABILITY_JOB_IMAGES`)
      await sleep(10)
    }
    assert.ok(seen !== undefined, 'the job never made progress')
    await svc.server.kill()
    t.diagnostic(`SIGKILL at job progress ${seen.done}/${seen.total}`)

    svc = await spawnService(env)
    api = svc.api
    // what was acknowledged before the kill is there, at once
    for (const id of acked) await api.assertFindable(id)
    const resumed = (await api.get(`/v1/index-jobs/${jobId}`)).json as JobViewT
    t.diagnostic(`after the restart the job reports ${resumed.done}/${resumed.total} (${resumed.status})`)
    assert.ok(resumed.done >= seen.done, `reported progress went backwards: ${seen.done} before the kill, ${resumed.done} after`)

    const finished = await api.waitForJob(jobId, TIMEOUT.server)
    assert.equal(finished.status, 'done', JSON.stringify(finished))
    assert.equal(finished.total, JOB_IMAGES)
    assert.equal(finished.failed, 0, JSON.stringify(finished.errors))
    assert.equal(finished.done, JOB_IMAGES, JSON.stringify(finished))
    acked.push(...jobItems.map((it) => it.id))
    await assertAllFindable(api, acked)

    // running the same folder again finds everything already stored
    const again = await api.post('/v1/index-jobs', { directory: 'batch' })
    assert.equal(again.status, 202, again.text)
    const second = await api.waitForJob(again.json.jobId as string, TIMEOUT.server)
    assert.equal(second.status, 'done', JSON.stringify(second))
    assert.equal(second.total, JOB_IMAGES)
    assert.equal((await api.counts()).images, acked.length, 'a second job over the same files indexed something twice')
  })

  test('writes and deletes after the last checkpoint survive a SIGKILL (replayed from SQLite)', async () => {
    assert.ok(svc !== undefined)
    await upload(svc.api, 'post-checkpoint', 2000, 3)
    // one image from before the last snapshot, one from after it
    const victims = ['sync-pre-0', 'post-checkpoint-0']
    const vectors: number[][] = []
    for (const id of victims) {
      const rec = await svc.api.hits({ query: [{ imageId: id }], k: 1, includeQueryImages: true })
      assert.equal(rec[0]?.id, id)
      const emb = await svc.api.post('/v1/embed', { images: [(await distinctImage(id === 'sync-pre-0' ? 1000 : 2000, 48)).toString('base64')] })
      vectors.push(emb.json.images[0] as number[])
      assert.equal((await svc.api.del(`/v1/images/${id}`)).status, 204)
      acked.splice(acked.indexOf(id), 1)
    }
    await svc.server.kill()
    svc = await spawnService(env)
    for (const [i, id] of victims.entries()) {
      assertError(await svc.api.get(`/v1/images/${id}`), 404, 'NOT_FOUND', `deleted ${id} after the restart`)
      const ids = (await svc.api.hits({ query: [{ vector: vectors[i]! }], k: 20 })).map((h) => h.id)
      assert.ok(!ids.includes(id), `deleted ${id} is still returned by search after the restart`)
    }
    await assertAllFindable(svc.api, acked)
  })

  test('a corrupt, then a missing, HNSW snapshot is rebuilt from SQLite', async () => {
    assert.ok(svc !== undefined)
    assert.equal(await svc.server.stop(30_000), 0, 'a graceful stop exits 0')
    const snapshots = filesEnding(dirs.dataDir, '.hnsw')
    assert.ok(snapshots.length > 0, `no *.hnsw snapshot under DATA_DIR after a graceful stop: ${readdirSync(dirs.dataDir).join(', ')}`)
    for (const file of snapshots) writeFileSync(file, randomBytes(Math.max(1024, statSync(file).size)))
    svc = await spawnService(env)
    await assertAllFindable(svc.api, acked)
    await upload(svc.api, 'after-corrupt', 2100, 2)

    assert.equal(await svc.server.stop(30_000), 0)
    for (const file of filesEnding(dirs.dataDir, '.hnsw')) rmSync(file)
    svc = await spawnService(env)
    await assertAllFindable(svc.api, acked)
    await upload(svc.api, 'after-delete', 2200, 2)
    await assertAllFindable(svc.api, acked)
    await svc.server.stop(30_000)
    svc = undefined
  })

  test('SIGTERM mid-job exits 0 and the job resumes on the next start', async (t) => {
    const n = 160
    mkdirSync(path.join(dirs.importDir, 'batch2'))
    for (let i = 0; i < n; i++) writeFileSync(path.join(dirs.importDir, 'batch2', `b-${i}.png`), await distinctImage(90_000 + i, 64))
    svc = await spawnService(env)
    const items = Array.from({ length: n }, (_, i) => ({ path: `batch2/b-${i}.png`, id: `term-${i}` }))
    const created = await svc.api.post('/v1/index-jobs', { items })
    assert.equal(created.status, 202, created.text)
    const jobId = created.json.jobId as string
    let done = 0
    while (done === 0) {
      const view = (await svc.api.get(`/v1/index-jobs/${jobId}`)).json as JobViewT
      assert.ok(view.status === 'queued' || view.status === 'running', `the job ended before it could be interrupted: ${JSON.stringify(view)}`)
      done = view.done
      await sleep(10)
    }
    assert.equal(await svc.server.stop(30_000), 0, 'SIGTERM during a job exits 0')
    svc = await spawnService(env)
    const resumed = (await svc.api.get(`/v1/index-jobs/${jobId}`)).json as JobViewT
    t.diagnostic(`SIGTERM at ${done}/${n}; after the restart ${resumed.done}/${n} (${resumed.status})`)
    assert.ok(resumed.done >= done, `progress went backwards: ${done} → ${resumed.done}`)
    const finished = await svc.api.waitForJob(jobId, TIMEOUT.server)
    assert.deepEqual([finished.status, finished.done, finished.failed], ['done', n, 0], JSON.stringify(finished))
    acked.push(...items.map((it) => it.id))
    await assertAllFindable(svc.api, acked)
    await svc.server.stop(30_000)
    svc = undefined
  })

  test('a DATA_DIR built by another model is refused at startup, naming both models', async () => {
    const other = MODEL_DIR === 'models/align-mini' ? 'test/fixtures/align-tiny' : 'models/align-mini'
    if (acked.length === 0) {
      // run on its own: give DATA_DIR something built by MODEL_DIR first
      svc = await spawnService(env)
      await upload(svc.api, 'own', 3000, 1)
      await svc.server.stop(30_000)
    }
    const modelId = (dir: string): string => (JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as { model_id: string }).model_id
    await assert.rejects(spawnService({ ...env, MODEL_DIR: other }), (err: Error) => {
      assert.match(err.message, /exited before it was ready/)
      assert.ok(err.message.includes(modelId(MODEL_DIR)) && err.message.includes(modelId(other)), err.message.slice(-1000))
      return true
    })
    // and the refusal touched nothing: the right model still finds everything
    svc = await spawnService(env)
    await assertAllFindable(svc.api, acked)
    await svc.server.stop(30_000)
    svc = undefined
  })
})

/** SIGKILL rounds in the test below (each one lands the moment an upload is acknowledged: support/kill.ts) */
const KILL_ROUNDS = 6

describe('acknowledged at the moment of a SIGKILL', { timeout: TIMEOUT.server * 2 }, () => {
  let dirs: Dirs
  let svc: SpawnedService | undefined

  before(() => { dirs = tempDirs('align-ack-kill-') })
  after(async () => {
    await svc?.server.kill()
    dirs?.remove()
  })

  test('every upload answered before the kill is stored and found after a restart', async (t) => {
    const env = serviceEnv(dirs)
    const acked: string[] = []
    const perRound = KILL_IMAGES_PER_ROUND
    for (let round = 0; round < KILL_ROUNDS; round++) {
      // made before the server starts, so the client is idle when an answer arrives
      const images = await Promise.all(Array.from({ length: perRound }, async (_, i) => await distinctImage(120_000 + round * perRound + i, 32)))
      svc = await spawnService(env)
      const got = await uploadUntilKilled(svc.server, svc.api, `kill-${round}`, images)
      t.diagnostic(`round ${round}: SIGKILL on acknowledgement ${ACKS_BEFORE_KILL}; ${got.length} acknowledged in all`)
      acked.push(...got)
    }
    svc = await spawnService(env)
    const missing: string[] = []
    for (const id of acked) {
      if ((await svc.api.get(`/v1/images/${id}`)).status !== 200) missing.push(id)
    }
    assert.deepEqual(missing, [], `acknowledged uploads missing after a SIGKILL and a restart (of ${acked.length} acknowledged)`)
    for (const id of acked) await svc.api.assertFindable(id)
    // answers the client never read may have been committed too, so at least, not exactly
    const stored = (await svc.api.counts()).images
    assert.ok(stored >= acked.length, `${stored} images stored, ${acked.length} acknowledged`)
    await svc.server.stop(30_000)
    svc = undefined
  })
})

/** Mounts a tmpfs of `size` at `dir`; false when this machine does not allow it. */
function mountTmpfs (dir: string, size: string): boolean {
  try {
    mkdirSync(dir, { recursive: true })
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Fills the file system holding `dir` with one file until `leave` bytes are free. */
function fillDisk (file: string, leave: number): void {
  const fd = openSync(file, 'w')
  const chunk = Buffer.alloc(64 * 1024, 0x5a)
  try {
    while (true) {
      const st = statfsSync(path.dirname(file))
      const free = st.bavail * st.bsize
      if (free <= leave) break
      writeSync(fd, chunk, 0, Math.min(chunk.length, free - leave))
    }
  } finally {
    closeSync(fd)
  }
}

describe('a full disk', { timeout: TIMEOUT.server * 2 }, () => {
  let dirs: Dirs
  let mount: string
  let mounted = false
  let svc: SpawnedService | undefined

  before(() => {
    dirs = tempDirs('align-enospc-')
    mount = path.join(dirs.root, 'small-disk')
    mounted = mountTmpfs(mount, '48m')
  })

  after(async () => {
    await svc?.server.kill()
    if (mounted) execFileSync('umount', ['-l', mount])
    dirs?.remove()
  })

  test('answers 507 in the error shape, stays up, recovers when space is freed, and keeps what it acknowledged', async (t) => {
    if (!mounted) {
      t.skip('cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)')
      return
    }
    const dataDir = path.join(mount, 'data')
    const env = serviceEnv({ dataDir, importDir: dirs.importDir }, { CHECKPOINT_EVERY: '5' })
    svc = await spawnService(env)
    const api = svc.api
    const acked: string[] = []
    let n = 0
    const batch = async (size: number): Promise<{ status: number, items: ItemResult[] | undefined, res: Awaited<ReturnType<Api['upload']>> }> => {
      const files = await Promise.all(Array.from({ length: size }, async () => ({ id: `disk-${n}`, bytes: await distinctImage(50_000 + n++, 96) })))
      const res = await api.upload(files)
      const items = res.status === 200 ? res.json.items as ItemResult[] : undefined
      for (const it of items ?? []) if (it.status === 'indexed') acked.push(it.id)
      return { status: res.status, items, res }
    }
    for (let i = 0; i < 3; i++) assert.equal((await batch(4)).status, 200)
    assert.equal(acked.length, 12)

    fillDisk(path.join(mount, 'ballast'), 256 * 1024)
    let refused: Awaited<ReturnType<typeof batch>> | undefined
    for (let i = 0; i < 200 && refused === undefined; i++) {
      const r = await batch(4)
      if (r.status !== 200 || r.items?.some((it) => it.status === 'failed') === true) refused = r
    }
    assert.ok(refused !== undefined, 'uploads never failed on a full disk')
    t.diagnostic(`refused after ${acked.length} acknowledged images: ${refused.status} ${refused.res.text.slice(0, 300)}`)
    if (refused.status !== 200) {
      assertError(refused.res, 507, 'INSUFFICIENT_STORAGE', 'upload on a full disk')
    } else {
      for (const it of refused.items!.filter((x) => x.status === 'failed')) assert.equal(it.code, 'INSUFFICIENT_STORAGE', JSON.stringify(it))
    }
    await api.assertHealthy()
    // reads still work while the disk is full
    assert.equal((await api.search({ query: [{ text: 'a striped square' }], k: 5 })).status, 200)
    // an upload job cannot be staged either
    const job = await api.req({ method: 'POST', path: '/v1/index-jobs', form: [['file', { bytes: await distinctImage(59_999, 96), filename: 'staged.png' }]] })
    t.diagnostic(`upload job on the full disk: ${job.status} ${job.text.slice(0, 200)}`)
    if (job.status !== 202) assertError(job, 507, 'INSUFFICIENT_STORAGE', 'staging an upload job on a full disk')

    rmSync(path.join(mount, 'ballast'))
    if (job.status === 202) await api.waitForJob(job.json.jobId as string, TIMEOUT.server)
    const recovered = await batch(2)
    assert.equal(recovered.status, 200, recovered.res.text)
    assert.deepEqual(recovered.items?.map((it) => it.status), ['indexed', 'indexed'], 'writes succeed again once space is freed')

    await svc.server.stop(30_000)
    svc = await spawnService(env)
    const expected = acked.length + (job.status === 202 ? 1 : 0)
    assert.equal((await svc.api.counts()).images, expected)
    for (const id of acked) await svc.api.assertFindable(id)
    await svc.server.stop(30_000)
    svc = undefined
  })
})
