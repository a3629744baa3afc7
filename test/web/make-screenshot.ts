/**
 * Makes docs/screenshot.png: the page with the README's arithmetic query (screenshot-query.ts) over the
 * whole demo pool, and the first result's per-term explanation opened by a tap on its score. It fails
 * unless the page shows exactly what POST /v1/search answers for that query (ids and scores, in order),
 * so the picture cannot show results the API does not return.
 * Usage: npx tsx test/web/make-screenshot.ts [out.png]   (builds dist/ when stale; Debian's chromium)
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { startServer } from '../helpers/spawn-server.js'
import { launchBrowser, openPage, resultCards } from './browser.js'
import { SCREENSHOT_BODY, SCREENSHOT_PAGE_QUERY } from './screenshot-query.js'

const out = path.resolve(process.argv[2] ?? 'docs/screenshot.png')
assert.equal(spawnSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { stdio: 'inherit' }).status, 0)
const tmp = mkdtempSync(path.join(os.tmpdir(), 'align-screenshot-'))
const server = await startServer({ DATA_DIR: path.join(tmp, 'data'), IMPORT_DIR: path.join(tmp, 'import'), DEMO_POOL: path.resolve('demo/pool'), API_KEY: '', API_KEY_READS: '', RATE_LIMIT_MAX: '', LOG_LEVEL: 'warn' })
const browser = await launchBrowser()
try {
  // the whole demo pool, as on a first start
  for (;;) {
    const { jobs } = await (await fetch(`${server.url}/v1/index-jobs?limit=5`)).json() as { jobs: Array<{ status: string }> }
    if (jobs.length > 0 && jobs.every((j) => j.status === 'done')) break
    await new Promise((resolve) => setTimeout(resolve, 1000))
  }
  const res = await fetch(`${server.url}/v1/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(SCREENSHOT_BODY) })
  const api = (await res.json() as { results: Array<{ id: string, score: number }> }).results
  assert.equal(res.status, 200)
  const { page, errors } = await openPage(browser, `${server.url}/${SCREENSHOT_PAGE_QUERY}`)
  await page.locator('#results .card').first().waitFor()
  await page.waitForFunction(() => [...document.querySelectorAll<HTMLImageElement>('#results .thumb')].slice(0, 12).every((img) => img.complete))
  const shown = await resultCards(page)
  const scores = await page.$$eval('#results .card .card-score', (els) => els.map((e) => e.textContent ?? ''))
  assert.deepEqual(shown.map((c) => c.id), api.map((r) => r.id), 'the page does not show what the API answers')
  assert.deepEqual(scores, api.map((r) => r.score.toFixed(3)))
  const first = page.locator('#results .card').first()
  await first.locator('.explain-toggle').click()
  await first.locator('.explain').waitFor({ state: 'visible' })
  await page.mouse.move(0, 0) // no hover elsewhere
  await page.waitForTimeout(300) // the explanation fades in
  await page.screenshot({ path: out })
  assert.deepEqual(errors, [])
  console.log(`wrote ${out}: ${SCREENSHOT_PAGE_QUERY}; shown = API top ${api.length}: ${api.slice(0, 6).map((r) => `${r.id} ${r.score.toFixed(3)}`).join(', ')}, …`)
} finally {
  await browser.close()
  await server.stop()
  rmSync(tmp, { recursive: true, force: true })
}
