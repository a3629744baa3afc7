import { describe, it, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pino from 'pino'
import { loadConfig } from '../../src/main/config/config.js'
import { openServices } from '../../src/main/wiring/open-services.js'
import { toServicesConfig } from '../../src/main/wiring/services-config.js'
import type { Services } from '../../src/services/types.js'
import { demoSubset } from '../helpers/demo-subset.js'
import { answersFor, assertOldAnswersBack, ids, query, WORDS } from '../helpers/switch-answers.js'
import { TIMEOUT } from '../helpers/timeouts.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const TINY = 'test/fixtures/align-tiny'

// One after hook, close then remove: hooks run in the order registered, and removing the
// folder while the services still write into it fails with ENOTEMPTY and leaves them open.
async function open (t: TestContext, dir: string, env: Record<string, string> = {}): Promise<Services> {
  const config = loadConfig({ DATA_DIR: path.join(dir, 'data'), IMPORT_DIR: path.join(dir, 'import'), DEMO_POOL: path.join(dir, 'pool'), MODELS_DIR: ROOT, MODEL_DIR: path.join(ROOT, 'models/align-mini'), ...env })
  const services = await openServices(toServicesConfig(config), pino({ level: 'silent' }))
  t.after(async () => {
    await services.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return services
}

async function demoLoaded (s: Services, images: number): Promise<void> {
  const jobs = await s.listJobs({ limit: 5 })
  for (const j of jobs) await s.waitForJob?.(j.id)
  for (let i = 0; i < 200 && (await s.stats()).texts === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  assert.equal((await s.stats()).images, images)
}

describe('model switch (embedded backend, real models)', () => {
  it('re-embeds beside the serving model: every search during the switch answers from the old model; uploads and deletes reach both; then swaps, and swaps back', { timeout: TIMEOUT.server }, async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'align-switch-'))
    const files = demoSubset(path.join(dir, 'pool'), 120)
    const s = await open(t, dir)
    await demoLoaded(s, 120)
    const models = s.models!
    assert.equal(s.model.modelId, (await models.status()).active.modelId)
    const oldModel = s.model.modelId
    const words = WORDS
    const before = await answersFor(s)

    // searches run all through the switch
    const state = { running: true }
    let answered = 0
    const mismatches: string[] = []
    const loop = (async () => {
      while (state.running) {
        for (const w of words) {
          const got = ids(await s.search(query(w)))
          answered++
          if (s.model.modelId === oldModel && got !== before.get(w) && state.running) mismatches.push(`${w}: ${got}`)
        }
      }
    })()

    const status = await models.start(TINY)
    assert.equal(status.standby?.state, 'building')
    assert.equal(status.standby?.dim, 80)
    assert.equal(s.model.modelId, oldModel, 'the old model serves while the new one is built')
    // during the switch: an upload and a delete reach both stores
    const extra = readFileSync(path.join(ROOT, 'demo/pool', 'carbon-alarm-add.png'))
    const [added] = await s.addImages([{ bytes: extra, id: 'added-during-switch' }])
    assert.equal(added?.status, 'indexed')
    const victim = path.basename(files[3]!, '.png')
    assert.equal(await s.deleteImage(victim), true)
    await models.idle()
    state.running = false
    await loop
    assert.deepEqual(mismatches, [], 'no search during the switch answered from another model')
    assert.ok(answered >= words.length, `searches answered during the switch: ${answered}`)

    const after = await models.status()
    assert.equal(after.active.modelId, 'align-random-tiny-80')
    assert.equal(after.standby?.modelId, oldModel)
    assert.equal(after.standby?.state, 'ready')
    assert.equal(s.model.embeddingDim, 80)
    const info = await s.stats()
    assert.equal(info.images, 120)
    // searches now encode with the new model (80-d vectors) and search its store
    const [vec] = await s.embedTexts(['cat'])
    assert.equal(vec!.length, 80)
    const hits = await s.search(query('cat'))
    assert.equal(hits.length, 5)
    const addedHit = await s.search({ query: [{ imageId: 'added-during-switch' }], target: 'images', k: 1, includeQueryImages: true })
    assert.equal(addedHit[0]?.id, 'added-during-switch', 'the upload made during the switch is in the new store')
    assert.equal((await s.search({ query: [{ imageId: victim }], target: 'images', k: 1 }).catch((e: Error) => e)) instanceof Error, true, 'the delete reached the new store')

    // swap back: instant, and the old answers return
    const t0 = performance.now()
    const back = await models.swap()
    const swapMs = performance.now() - t0
    assert.equal(back.active.modelId, oldModel)
    assert.equal(s.model.modelId, oldModel)
    t.diagnostic(`searches answered during the switch: ${answered}; swap back took ${swapMs.toFixed(1)} ms`)
    await assertOldAnswersBack(s, before, victim, 'the old store')

    // DELETE drops the standby model: no swap back any more
    assert.equal(await models.dropStandby(), true)
    assert.equal((await models.status()).standby, null)
  })

  it('counts images that have neither a readable source nor a large-enough preview, and never embeds them silently', { timeout: TIMEOUT.server }, async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'align-switch-'))
    demoSubset(path.join(dir, 'pool'), 0)
    const s = await open(t, dir, { PREVIEW_SIZE: '0' })
    // an upload: no source file, no preview, no original
    const bytes = readFileSync(path.join(ROOT, 'demo/pool', 'carbon-alarm-add.png'))
    await s.addImages([{ bytes, id: 'upload-1' }])
    await assert.rejects(s.models!.start(TINY), (err: Error & { statusCode?: number }) => {
      assert.equal(err.statusCode, 409)
      assert.match(err.message, /^1 image\(s\) have neither a readable source/)
      return true
    })
    assert.equal((await s.models!.status()).standby, null, 'nothing started')
    await s.models!.start(TINY, { lowResolution: 'skip' })
    await s.models!.idle()
    const st = await s.models!.status()
    assert.equal(st.active.modelId, 'align-random-tiny-80')
    assert.equal(st.standby?.modelId !== undefined, true)
    await assert.rejects(s.search({ query: [{ imageId: 'upload-1' }], target: 'images', k: 1 }), /left out of the active model/)
  })

  it('refuses a folder outside MODELS_DIR and one that breaks the model contract', { timeout: TIMEOUT.server }, async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'align-switch-'))
    demoSubset(path.join(dir, 'pool'), 0)
    const s = await open(t, dir)
    await assert.rejects(s.models!.start('../../etc'), /not a folder under MODELS_DIR/)
    await assert.rejects(s.models!.start('test/fixtures'), (err: Error & { statusCode?: number }) => err.statusCode === 400 && /model folder/.test(err.message))
  })
})
