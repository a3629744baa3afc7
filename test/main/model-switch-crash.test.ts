/**
 * The model switch's crash promise, on each backend: a server SIGKILLed mid-switch, restarted with the
 * new model's MODEL_DIR, explains the state, follows the data's active model, resumes and completes
 * the switch (keeping what was embedded before the kill); then a swap back and DELETE of the standby
 * model through the HTTP API. The PostgreSQL case skips, with the reason, where there is no server.
 */
import { after, it, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { demoSubset } from '../helpers/demo-subset.js'
import { startServer, type RunningServer } from '../helpers/spawn-server.js'
import { TIMEOUT } from '../helpers/timeouts.js'
import { startTestPostgres } from '../../scripts/lib/postgres-server.js'

const server = await startTestPostgres({ engine: 'server' })
const skip = 'url' in server ? undefined : `no PostgreSQL server: ${server.skip}`
after(async () => { if ('url' in server) await server.stop() })

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const POOL = 300

interface Models { active: { modelId: string }, standby: null | { modelId: string, state: string, progress?: { images: { done: number, total: number } } }, running: boolean }

async function get<T> (s: RunningServer, p: string): Promise<T> {
  const res = await fetch(s.url + p)
  assert.equal(res.status, 200, `${p}: ${await res.clone().text()}`)
  return await res.json() as T
}

let last: unknown

async function until<T> (what: string, fn: () => Promise<T | undefined>, ms: number = TIMEOUT.server): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last seen ${JSON.stringify(last)}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** The scenario, on the backend `databaseUrl` names (SQLite in DATA_DIR when undefined). */
async function killMidSwitchAndResume (t: TestContext, databaseUrl: string | undefined): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'align-switch-crash-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  demoSubset(path.join(dir, 'pool'), POOL)
  mkdirSync(path.join(dir, 'import'))
  const env = { ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }), DATA_DIR: path.join(dir, 'data'), IMPORT_DIR: path.join(dir, 'import'), DEMO_POOL: path.join(dir, 'pool'), MODELS_DIR: ROOT, MODEL_DIR: path.join(ROOT, 'models/align-mini'), INDEX_BATCH_SIZE: '8' }
  const first = await startServer(env, { timeoutMs: TIMEOUT.model })
  t.after(async () => { await first.kill() })
  const images = await until('the demo pool', async () => {
    const { jobs } = await get<{ jobs: Array<{ status: string }> }>(first, '/v1/index-jobs')
    const info = await get<{ counts: { images: number, texts: number } }>(first, '/v1/info')
    last = { jobs, counts: info.counts }
    // a few demo images repeat another's bytes: stored once
    return jobs[0]?.status === 'done' && info.counts.texts > 0 ? info.counts.images : undefined
  })
  assert.ok(images > POOL * 0.9)
  const res = await fetch(first.url + '/v1/models/switch', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ modelDir: 'test/fixtures/align-tiny' }) })
  assert.equal(res.status, 202, await res.clone().text())
  const killedAt = await until('the switch under way', async () => {
    const m = await get<Models>(first, '/v1/models')
    last = m
    const done = m.standby?.progress?.images.done ?? 0
    return done >= 16 ? done : undefined
  }, TIMEOUT.model)
  await first.kill()
  assert.ok(killedAt < images, `killed mid-switch (${killedAt}/${images} images had the new model's vector)`)

  // restarted with the other model's MODEL_DIR (the one being switched to): it explains the state in
  // its log, follows the data's active model, and resumes the switch
  const second = await startServer({ ...env, MODEL_DIR: path.join(ROOT, 'test/fixtures/align-tiny') }, { timeoutMs: TIMEOUT.model })
  t.after(async () => { await second.stop() })
  assert.match(second.logs(), /align-random-tiny-80 is its standby model \(a switch to it is under way\)/)
  assert.match(second.logs(), /MODEL_DIR names the standby model: serving the data's active model instead/)
  const resumed = await get<Models>(second, '/v1/models')
  assert.equal(resumed.standby?.state, 'building', 'the switch resumed after the restart')
  assert.ok((resumed.standby?.progress?.images.done ?? 0) >= killedAt, 'what was embedded before the kill was kept')
  let answered = 0
  const done = await until('the swap', async () => {
    const s = await fetch(second.url + '/v1/search', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: [{ text: 'cat' }], target: 'images', k: 5 }) })
    assert.equal(s.status, 200)
    answered++
    const m = await get<Models>(second, '/v1/models')
    return m.active.modelId === 'align-random-tiny-80' ? m : undefined
  })
  assert.equal(done.standby?.state, 'ready')
  const info = await get<{ model: { modelId: string, dim: number }, standby: { modelId: string, state: string } | null, counts: { images: number } }>(second, '/v1/info')
  assert.equal(info.model.dim, 80)
  assert.equal(info.standby?.state, 'ready')
  assert.equal(info.counts.images, images)
  t.diagnostic(`killed at ${killedAt}/${images} images; ${answered} searches answered (all 200) while the resumed switch ran`)

  // swap back and delete, over HTTP
  const back = await fetch(second.url + '/v1/models/swap', { method: 'POST' })
  assert.equal(back.status, 200, await back.clone().text())
  const swapped = await back.json() as Models
  assert.equal(swapped.active.modelId, 'align-mini-v3')
  assert.equal(swapped.standby?.modelId, 'align-random-tiny-80')
  const search = await fetch(second.url + '/v1/search', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: [{ text: 'cat' }], target: 'images', k: 5 }) })
  assert.equal(search.status, 200)
  const drop = await fetch(second.url + '/v1/models/standby', { method: 'DELETE' })
  assert.equal(drop.status, 204, await drop.clone().text())
  assert.equal((await get<Models>(second, '/v1/models')).standby, null)
}

it('a SIGKILL mid-switch: the server restarted (with the new model\'s MODEL_DIR) explains the state, follows the data\'s active model, resumes and completes the switch; swap back and DELETE over HTTP', { timeout: TIMEOUT.soak }, async (t) => {
  await killMidSwitchAndResume(t, undefined)
})

it('PostgreSQL: the same, with the database\'s active model', { timeout: TIMEOUT.soak, ...(skip === undefined ? {} : { skip }) }, async (t) => {
  await killMidSwitchAndResume(t, 'url' in server ? await server.newDatabase() : undefined)
})
