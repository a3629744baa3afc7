/**
 * The model panel in a real browser against the real server: the active model, a running switch's
 * progress, and "Swap back" while the previous model's vectors are on standby.
 */
import { it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { demoSubset } from '../helpers/demo-subset.js'
import { startServer } from '../helpers/spawn-server.js'
import { TIMEOUT } from '../helpers/timeouts.js'
import { launchBrowser, openPage } from './browser.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

it('the page shows the active model, a switch in progress, and swaps back with one click', { timeout: TIMEOUT.browser }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'align-web-models-'))
  demoSubset(path.join(dir, 'pool'), 200)
  const server = await startServer({ DATA_DIR: path.join(dir, 'data'), IMPORT_DIR: path.join(dir, 'import'), DEMO_POOL: path.join(dir, 'pool'), MODELS_DIR: ROOT, MODEL_DIR: path.join(ROOT, 'models/align-mini'), INDEX_BATCH_SIZE: '4' }, { timeoutMs: TIMEOUT.model })
  t.after(async () => { await server.stop() })
  // after the stop: hooks run in the order registered, and the server writes into dir
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  for (;;) {
    const jobs = await (await fetch(server.url + '/v1/index-jobs')).json() as { jobs: Array<{ status: string }> }
    if (jobs.jobs[0]?.status === 'done') break
    await new Promise((resolve) => setTimeout(resolve, 300))
  }
  const browser = await launchBrowser()
  t.after(async () => { await browser.close() })
  const { page, errors } = await openPage(browser, server.url + '/')
  await page.waitForSelector('#models:not([hidden])')
  assert.match(await page.textContent('#models-text') ?? '', /^Active model align-mini\S* \(256-d\)\.$/)
  assert.equal(await page.isVisible('#swap-back'), false)

  const res = await fetch(server.url + '/v1/models/switch', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ modelDir: 'test/fixtures/align-tiny' }) })
  assert.equal(res.status, 202)
  await page.reload()
  // progress while it runs (the panel polls), then the standby model and its button once swapped
  const seen = await page.waitForFunction(() => {
    const el = document.querySelector('#models')
    return el instanceof HTMLElement && el.dataset.state !== 'none' ? el.dataset.state : false
  }, undefined, { timeout: TIMEOUT.model })
  const firstState = await seen.jsonValue()
  if (firstState === 'building') assert.match(await page.textContent('#models-text') ?? '', /switching to align-random-tiny-80 \(80-d\): images \d+\/\d+, texts \d+\/\d+/)
  await page.waitForSelector('#swap-back:not([hidden])', { timeout: TIMEOUT.model })
  assert.match(await page.textContent('#models-text') ?? '', /^Active model align-random-tiny-80 \(80-d\); align-mini\S* is on standby\.$/)
  await page.waitForFunction(() => /80-d/.test(document.querySelector('#info')?.textContent ?? ''), undefined, { timeout: TIMEOUT.unit })

  await page.click('#swap-back')
  await page.waitForFunction(() => /^Active model align-mini\S* \(256-d\); align-random-tiny-80 is on standby\.$/.test(document.querySelector('#models-text')?.textContent ?? ''), undefined, { timeout: TIMEOUT.unit })
  const info = await (await fetch(server.url + '/v1/info')).json() as { model: { dim: number }, standby: { modelId: string } | null }
  assert.equal(info.model.dim, 256)
  assert.equal(info.standby?.modelId, 'align-random-tiny-80')
  t.diagnostic(`first state the page showed after the switch began: ${String(firstState)}`)
  assert.deepEqual(errors, [])
})
