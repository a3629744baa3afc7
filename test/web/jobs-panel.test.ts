/**
 * The page while the demo pool is being indexed on a first start, in a real browser against the real
 * server: the jobs panel shows the job it did not start, with its progress; the header's image count
 * moves without a reload; and a search that finds nothing says the demo pool is being indexed rather
 * than asking whether the index is empty.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { TIMEOUT } from '../helpers/timeouts.js'
import { startServer, type RunningServer } from '../helpers/spawn-server.js'
import { CHROMIUM, launchBrowser, openPage, searchSeq, waitForSearch, type Browser } from './browser.js'

const noBrowser = existsSync(CHROMIUM) ? false : `no chromium at ${CHROMIUM} (set CHROMIUM_PATH)`

describe('the page during the first start', { skip: noBrowser }, () => {
  let tmp: string
  let server: RunningServer
  let browser: Browser

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'align-search-web-jobs-'))
    // the whole demo pool: its job runs long enough (tens of seconds here) to watch it
    server = await startServer({
      DATA_DIR: path.join(tmp, 'data'),
      IMPORT_DIR: path.join(tmp, 'import'),
      DEMO_POOL: path.resolve('demo/pool'),
      API_KEY: '',
      API_KEY_READS: '',
      RATE_LIMIT_MAX: '',
      CORS_ORIGIN: ''
    }, { timeoutMs: TIMEOUT.server })
    browser = await launchBrowser()
  }, { timeout: TIMEOUT.browser })

  after(async () => {
    await browser?.close()
    await server?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  test('shows the demo job it did not start, with progress; the count refreshes; an empty result says the demo pool is being indexed', { timeout: TIMEOUT.browser }, async () => {
    const { page, errors } = await openPage(browser, server.url)
    // the demo pool's job was started by the server, not by this page
    const card = page.locator('#jobs .job', { hasText: 'Demo pool' })
    await card.waitFor({ timeout: 30_000 })
    await page.waitForFunction(() => {
      const el = document.querySelector('#jobs .job[data-status="running"] .progress')
      return el !== null && Number(el.getAttribute('aria-valuemax')) > 100
    }, undefined, { timeout: 60_000 })

    // the header's count goes up while the job runs, with no reload and no search
    const count = async (): Promise<number> => Number(/([\d,]+) images?/.exec(await page.textContent('#info') ?? '')?.[1]?.replace(/,/g, '') ?? -1)
    await page.waitForFunction(() => /\d+ images?/.test(document.querySelector('#info')?.textContent ?? ''))
    const first = await count()
    await page.waitForFunction((n) => {
      const m = /([\d,]+) images?/.exec(document.querySelector('#info')?.textContent ?? '')
      return m !== null && Number(m[1]!.replace(/,/g, '')) > n
    }, first, { timeout: 60_000 })

    // a search that finds nothing while the job runs (answered empty here, as it is before the first batch lands)
    await page.route('**/v1/search', async (route) => { await route.fulfill({ status: 200, contentType: 'application/json', body: '{"results":[]}' }) })
    const seq = await searchSeq(page)
    await page.fill('#query-text', 'cat face')
    await page.press('#query-text', 'Enter')
    await waitForSearch(page, seq)
    const text = await page.textContent('#results .empty') ?? ''
    assert.match(text, /indexing the demo pool…/)
    assert.doesNotMatch(text, /empty/)
    assert.equal(await card.getAttribute('data-status'), 'running')
    assert.deepEqual(errors, [])
    await page.close()
  })
})
