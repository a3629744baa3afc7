/**
 * The model switch on PostgreSQL + pgvector, through the same services as on the embedded backend:
 * a demo subset switched from align-mini to test/fixtures/align-tiny (80-d) on a real PostgreSQL,
 * with a second replica (another Services over the same database) that follows the swap by itself.
 * Skips, with the reason, where there is no PostgreSQL server.
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import pino from 'pino'
import { loadConfig } from '../../src/main/config/config.js'
import { openServices } from '../../src/main/wiring/open-services.js'
import { toServicesConfig } from '../../src/main/wiring/services-config.js'
import type { Services } from '../../src/services/types.js'
import { startTestPostgres } from '../../scripts/lib/postgres-server.js'
import { demoSubset } from '../helpers/demo-subset.js'
import { answersFor, assertOldAnswersBack, ids, query, WORDS } from '../helpers/switch-answers.js'
import { TIMEOUT } from '../helpers/timeouts.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const TINY = 'test/fixtures/align-tiny'
const POOL = 120

const server = await startTestPostgres({ engine: 'server' })
const skip = 'url' in server ? undefined : `no PostgreSQL server: ${server.skip}`
after(async () => { if ('url' in server) await server.stop() })

async function open (dir: string, databaseUrl: string, env: Record<string, string> = {}): Promise<Services> {
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    DATA_DIR: path.join(dir, 'data'),
    IMPORT_DIR: path.join(dir, 'import'),
    DEMO_POOL: path.join(dir, 'pool'),
    MODELS_DIR: ROOT,
    MODEL_DIR: path.join(ROOT, 'models/align-mini'),
    ...env
  })
  return await openServices(toServicesConfig(config), pino({ level: process.env.TEST_LOG ?? 'silent' }))
}

async function demoLoaded (s: Services, images: number): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    const jobs = await s.listJobs({ limit: 5 })
    const st = await s.stats()
    if (jobs.length > 0 && jobs.every((j) => j.status === 'done') && st.texts > 0) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  assert.equal((await s.stats()).images, images)
}

describe('model switch on PostgreSQL (real models, two replicas)', { ...(skip === undefined ? {} : { skip }) }, () => {
  it('re-embeds beside the serving model: searches during the switch answer from the old model; writes reach both columns; the swap reaches the other replica; swap back; DELETE', { timeout: TIMEOUT.soak }, async (t) => {
    const url = 'url' in server ? await server.newDatabase() : ''
    const dir = mkdtempSync(path.join(tmpdir(), 'align-switch-pg-'))
    const files = demoSubset(path.join(dir, 'pool'), POOL)
    mkdirSync(path.join(dir, 'import'))
    const s = await open(dir, url)
    t.after(async () => { await s.close() })
    await demoLoaded(s, POOL)
    // a second API replica, serving no index work
    const other = await open(dir, url, { INDEX_WORKER: 'off', DEMO_POOL: '' })
    t.after(async () => { await other.close() })
    // after the closes: hooks run in the order registered, and the services write into dir
    t.after(() => { rmSync(dir, { recursive: true, force: true }) })
    const models = s.models!
    const oldModel = s.model.modelId
    assert.equal((await models.status()).active.modelId, oldModel)
    const words = WORDS
    const before = await answersFor(s)

    const state = { running: true }
    let answered = 0
    const mismatches: string[] = []
    const errors: string[] = []
    const loop = async (via: Services): Promise<void> => {
      while (state.running) {
        for (const w of words) {
          try {
            const got = ids(await via.search(query(w)))
            answered++
            if (via.model.modelId === oldModel && got !== before.get(w) && state.running) mismatches.push(`${w}: ${got}`)
          } catch (err) {
            errors.push((err as Error).message)
          }
        }
      }
    }
    const loops = [loop(s), loop(other)]

    const t0 = performance.now()
    const status = await models.start(TINY)
    assert.equal(status.standby?.state, 'building')
    assert.equal(status.standby?.dim, 80)
    assert.equal(s.model.modelId, oldModel, 'the old model serves while the new one is built')
    // the other replica loads the standby model from the record (MODELS_DIR + its folder), so its writes reach both columns
    for (let i = 0; i < 200 && other.standbyModel?.modelId !== 'align-random-tiny-80'; i++) await new Promise((resolve) => setTimeout(resolve, 50))
    assert.equal(other.standbyModel?.modelId, 'align-random-tiny-80', 'the other replica follows the switch\'s start')
    const extra = readFileSync(path.join(ROOT, 'demo/pool', 'carbon-alarm-add.png'))
    const [added] = await other.addImages([{ bytes: extra, id: 'added-during-switch' }])
    assert.equal(added?.status, 'indexed')
    const victim = path.basename(files[3]!, '.png')
    assert.equal(await s.deleteImage(victim), true)
    await models.idle()
    const switchMs = performance.now() - t0
    // the other replica follows the swap (NOTIFY) without a restart
    for (let i = 0; i < 200 && other.model.modelId === oldModel; i++) await new Promise((resolve) => setTimeout(resolve, 25))
    state.running = false
    await Promise.all(loops)
    assert.deepEqual(mismatches, [], 'no search during the switch answered from another model')
    assert.deepEqual(errors, [], 'every search during the switch answered')
    t.diagnostic(`switch of ${POOL} images: ${switchMs.toFixed(0)} ms; ${answered} searches answered by two replicas meanwhile, ${errors.length} errors`)

    const after = await models.status()
    assert.equal(after.active.modelId, 'align-random-tiny-80')
    assert.equal(after.standby?.modelId, oldModel)
    assert.equal(after.standby?.state, 'ready')
    assert.equal(s.model.embeddingDim, 80)
    assert.equal(other.model.modelId, 'align-random-tiny-80', 'the other replica serves the new model')
    assert.equal(other.standbyModel?.modelId, oldModel)
    assert.equal((await s.stats()).images, POOL)
    for (const via of [s, other]) {
      const hits = await via.search(query('cat'))
      assert.equal(hits.length, 5)
      const addedHit = await via.search({ query: [{ imageId: 'added-during-switch' }], target: 'images', k: 1, includeQueryImages: true })
      assert.equal(addedHit[0]?.id, 'added-during-switch', 'the upload made during the switch is in the new model\'s column')
      assert.equal(addedHit[0]?.score !== undefined && addedHit[0].score > 0.999, true)
    }
    // searches now encode with the new model and search its column: the same as the new model on its own would answer
    const [vec] = await s.embedTexts(['cat'])
    assert.equal(vec!.length, 80)

    // swap back: instant, and the old answers return, in both replicas
    const t1 = performance.now()
    const back = await models.swap()
    const swapMs = performance.now() - t1
    assert.equal(back.active.modelId, oldModel)
    assert.equal(s.model.modelId, oldModel)
    for (let i = 0; i < 200 && other.model.modelId !== oldModel; i++) await new Promise((resolve) => setTimeout(resolve, 25))
    assert.equal(other.model.modelId, oldModel, 'the other replica follows the swap back')
    t.diagnostic(`swap back: ${swapMs.toFixed(1)} ms`)
    for (const via of [s, other]) {
      await assertOldAnswersBack(via, before, victim, "the old model's column")
    }

    // DELETE drops the standby model's column: no swap back any more, and the other replica lets go of it
    assert.equal(await models.dropStandby(), true)
    assert.equal((await models.status()).standby, null)
    for (let i = 0; i < 200 && other.standbyModel !== undefined; i++) await new Promise((resolve) => setTimeout(resolve, 25))
    assert.equal(other.standbyModel, undefined)
    const db = new pg.Client({ connectionString: url })
    await db.connect()
    try {
      const cols = await db.query("SELECT table_name FROM information_schema.columns WHERE column_name = 'standby_embedding'")
      assert.equal(cols.rowCount, 0, 'the standby column is gone')
    } finally {
      await db.end()
    }
  })

  it('reports one moment of the slots: a swap while the status counts the progress never pairs the new active model with the old standby record', { timeout: TIMEOUT.soak }, async (t) => {
    const url = 'url' in server ? await server.newDatabase() : ''
    const dir = mkdtempSync(path.join(tmpdir(), 'align-switch-pg-status-'))
    demoSubset(path.join(dir, 'pool'), 60)
    mkdirSync(path.join(dir, 'import'))
    const s = await open(dir, url)
    t.after(async () => { await s.close() })
    t.after(() => { rmSync(dir, { recursive: true, force: true }) })
    await demoLoaded(s, 60)
    const models = s.models!
    const torn: string[] = []
    const state = { polling: true }
    let polls = 0
    const poll = (async () => {
      while (state.polling) {
        const st = await models.status()
        polls++
        if (st.standby !== null && st.standby.modelId === st.active.modelId) torn.push(`${st.active.modelId} active, standby ${st.standby.modelId} ${st.standby.state}`)
        // a status without a standby model awaits nothing: yield, or this loop starves the switch
        await new Promise((resolve) => setImmediate(resolve))
      }
    })()
    await models.start(TINY)
    await models.idle()
    state.polling = false
    await poll
    assert.equal((await models.status()).active.modelId, 'align-random-tiny-80', 'the switch swapped')
    assert.deepEqual(torn, [], `${polls} status reads`)
  })

  it('a switch whose process stops is taken over by another replica, keeping what was embedded, and completes', { timeout: TIMEOUT.soak }, async (t) => {
    const url = 'url' in server ? await server.newDatabase() : ''
    const dir = mkdtempSync(path.join(tmpdir(), 'align-switch-pg-'))
    demoSubset(path.join(dir, 'pool'), POOL)
    mkdirSync(path.join(dir, 'import'))
    const first = await open(dir, url, { INDEX_BATCH_SIZE: '8' })
    let firstOpen = true
    t.after(async () => { if (firstOpen) await first.close() })
    await demoLoaded(first, POOL)
    const second = await open(dir, url, { INDEX_WORKER: 'off', DEMO_POOL: '' })
    t.after(async () => { await second.close() })
    t.after(() => { rmSync(dir, { recursive: true, force: true }) })
    await first.models!.start(TINY)
    let done = 0
    for (let i = 0; i < 1200 && done < 16; i++) {
      done = (await first.models!.status()).standby?.progress?.images.done ?? 0
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    assert.ok(done >= 16 && done < POOL, `stopped mid-switch (${done}/${POOL})`)
    await first.close()
    firstOpen = false
    const kept = (await second.models!.status()).standby?.progress?.images.done ?? 0
    assert.ok(kept >= done, `what was embedded before the stop is kept (${kept} >= ${done})`)
    let answered = 0
    for (let i = 0; i < 2400 && second.model.modelId !== 'align-random-tiny-80'; i++) {
      assert.equal((await second.search(query('cat'))).length, 5)
      answered++
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    const st = await second.models!.status()
    assert.equal(st.active.modelId, 'align-random-tiny-80', 'the other replica took the switch over and swapped')
    assert.equal(st.standby?.state, 'ready')
    assert.equal((await second.stats()).images, POOL)
    t.diagnostic(`stopped at ${done}/${POOL}; the other replica took over; ${answered} searches answered by it meanwhile`)
  })
})
