/**
 * On a touch screen the per-term explanation of a result is reachable without hover: tapping a
 * result's score opens it, tapping again closes it, and nothing opens it by itself. Chromium with
 * touch emulation (isMobile, hasTouch: `(hover: none)`) against the built server with a small demo pool.
 */
import assert from 'node:assert/strict'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { startServer, type RunningServer } from '../helpers/spawn-server.js'
import { TIMEOUT } from '../helpers/timeouts.js'
import { CHROMIUM, launchBrowser, openPage, type Browser } from './browser.js'

const DEMO = path.resolve('demo/pool')
const FILES = ['twemoji-cat-face.png', 'twemoji-cat.png', 'twemoji-dog-face.png', 'twemoji-red-heart.png', 'twemoji-pizza.png', 'twemoji-waving-hand.png']
const noBrowser = existsSync(CHROMIUM) ? false : `no chromium at ${CHROMIUM} (set CHROMIUM_PATH)`

describe('term details on a touch screen', { skip: noBrowser, timeout: TIMEOUT.browser }, () => {
  let tmp: string
  let server: RunningServer
  let browser: Browser
  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'align-touch-'))
    const pool = path.join(tmp, 'pool')
    mkdirSync(pool)
    const manifest = readFileSync(path.join(DEMO, 'manifest.jsonl'), 'utf8').split('\n')
    writeFileSync(path.join(pool, 'manifest.jsonl'), FILES.map((f) => {
      copyFileSync(path.join(DEMO, f), path.join(pool, f))
      return manifest.find((l) => l.includes(`"file":"${f}"`)) ?? ''
    }).join('\n') + '\n')
    server = await startServer({ DATA_DIR: path.join(tmp, 'data'), IMPORT_DIR: path.join(tmp, 'import'), DEMO_POOL: pool, API_KEY: '', API_KEY_READS: '', RATE_LIMIT_MAX: '', LOG_LEVEL: 'warn' }, { timeoutMs: TIMEOUT.server })
    for (;;) {
      const info = await (await fetch(`${server.url}/v1/info`)).json() as { counts: { images: number } }
      if (info.counts.images === FILES.length) break
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    browser = await launchBrowser({ width: 390, height: 844 }, true)
  }, { timeout: TIMEOUT.browser })
  after(async () => {
    await browser?.close()
    await server?.stop()
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true })
  })

  test('a tap on a score shows how the result matches each term, a second tap hides it', async () => {
    const { page, errors } = await openPage(browser, `${server.url}/?q=t:cat%20face&q=t@-0.5:dog`)
    const card = page.locator('#results .card').first()
    await card.waitFor()
    assert.equal(await page.evaluate(() => matchMedia('(hover: none)').matches), true, 'the context does not emulate a touch screen')
    const explain = card.locator('.explain')
    const toggle = card.locator('.explain-toggle')
    assert.equal(await explain.isVisible(), false, 'the explanation shows before any tap')
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false')
    await toggle.tap()
    await explain.waitFor({ state: 'visible' })
    assert.equal(await toggle.getAttribute('aria-expanded'), 'true')
    assert.equal(await explain.locator('li').count(), 2)
    assert.match(await explain.innerText(), /cat face[\s\S]*dog/)
    // tapping the score did not start a "More like this" search: the query is unchanged
    assert.equal(new URL(page.url()).searchParams.getAll('q').length, 2)
    await toggle.tap()
    await explain.waitFor({ state: 'hidden' })
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false')
    // another card's details open on their own tap, independently
    const second = page.locator('#results .card').nth(1)
    await second.locator('.explain-toggle').tap()
    await second.locator('.explain').waitFor({ state: 'visible' })
    assert.equal(await explain.isVisible(), false)
    assert.deepEqual(errors, [])
    await page.close()
  })
})
