/**
 * With API_KEY set on the server, the page's writes fail in words until the key is entered
 * in the page's "API key" field; then they succeed. (No demo pool: this is about auth only.)
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, rmSync, copyFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { TIMEOUT } from '../helpers/timeouts.js'
import { startServer, type RunningServer } from '../helpers/spawn-server.js'
import { CHROMIUM, launchBrowser, openPage, type Browser } from './browser.js'

const KEY = 'page-test-key-0123456789'
const noBrowser = existsSync(CHROMIUM) ? false : `no chromium at ${CHROMIUM} (set CHROMIUM_PATH)`

describe('the page with an API key on the server', { skip: noBrowser }, () => {
  let tmp: string
  let server: RunningServer
  let browser: Browser

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'align-search-web-key-'))
    mkdirSync(path.join(tmp, 'import', 'few'), { recursive: true })
    for (const f of ['twemoji-cat-face.png', 'twemoji-dog-face.png']) copyFileSync(path.resolve('demo/pool', f), path.join(tmp, 'import', 'few', f))
    server = await startServer({
      DATA_DIR: path.join(tmp, 'data'),
      IMPORT_DIR: path.join(tmp, 'import'),
      DEMO_POOL: '',
      API_KEY: KEY,
      API_KEY_READS: '',
      RATE_LIMIT_MAX: '',
      CORS_ORIGIN: '',
      LOG_LEVEL: 'warn'
    }, { timeoutMs: TIMEOUT.server })
    browser = await launchBrowser()
  }, { timeout: TIMEOUT.browser })

  after(async () => {
    await browser?.close()
    await server?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  test('a write without the key shows the 401 message; with the key stored it runs', { timeout: TIMEOUT.browser }, async () => {
    const { page, errors } = await openPage(browser, server.url + '/')
    // the page learns from /v1/info that writes need a key, and says so
    await page.waitForFunction(() => /API key/.test(document.querySelector('#api-key-status')?.textContent ?? ''))

    await page.fill('#directory', 'few')
    await page.click('#directory-form button[type="submit"]')
    await page.locator('#index-error').waitFor({ state: 'visible' })
    const denied = await fetch(server.url + '/v1/index-jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"directory":"few"}' })
    assert.equal(denied.status, 401)
    assert.equal((await page.textContent('#index-error'))?.trim(), (await denied.json() as { message: string }).message)
    assert.equal(await page.locator('.job').count(), 0)

    await page.click('#api-key summary')
    await page.fill('#api-key-input', KEY)
    await page.press('#api-key-input', 'Enter')
    assert.match(await page.textContent('#api-key-status') ?? '', /saved/)
    assert.equal(await page.evaluate(() => localStorage.getItem('align-search.apiKey')), KEY)

    await page.click('#directory-form button[type="submit"]')
    await page.waitForFunction(() => document.querySelector<HTMLElement>('.job')?.dataset.status === 'done', undefined, { timeout: 60_000 })
    assert.equal(await page.isVisible('#index-error'), false)
    assert.match(await page.locator('.job-counts').first().textContent() ?? '', /2 \/ 2 · 100%/)
    assert.deepEqual(errors, [])
    await page.close()
  })
})
