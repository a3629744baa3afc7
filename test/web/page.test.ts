/**
 * The search page in a real browser against the real server, model and demo pool.
 * Each test asserts what a person would see on the screen.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import sharp from 'sharp'
import type { Page } from 'playwright-core'
import { TIMEOUT } from '../helpers/timeouts.js'
import { startServer, type RunningServer } from '../helpers/spawn-server.js'
import { SCREENSHOT_BODY, SCREENSHOT_CAPTION_QUERY, SCREENSHOT_IMAGE_ID, SCREENSHOT_PAGE_QUERY } from './screenshot-query.js'
import { CHROMIUM, launchBrowser, openPage, resultCards, searchSeq, waitForSearch, type Browser } from './browser.js'

const POOL = path.resolve('demo/pool')
const BATCH = 6

let tmp: string
let server: RunningServer
let browser: Browser

/** A few images nobody has indexed yet (plus one broken file) for the directory job. */
async function makeImportDir (dir: string): Promise<void> {
  mkdirSync(path.join(dir, 'batch'), { recursive: true })
  for (let i = 0; i < BATCH; i++) {
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96"><rect width="96" height="96" fill="hsl(${i * 60},70%,60%)"/><circle cx="${20 + i * 10}" cy="48" r="${12 + i * 3}" fill="#fff"/></svg>`
    writeFileSync(path.join(dir, 'batch', `shape-${i}.png`), await sharp(Buffer.from(svg)).png().toBuffer())
  }
  writeFileSync(path.join(dir, 'batch', 'broken.jpg'), 'this is not a jpeg')
}

async function api<T> (method: string, route: string, body?: unknown): Promise<{ status: number, json: T }> {
  const res = await fetch(server.url + route, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  return { status: res.status, json: await res.json() as T }
}

/**
 * The server queues the demo pool as an index job on its first start (logged as "demo pool
 * queued" with the job id): wait for that job to finish. Returns the number of images.
 */
async function waitForDemoPool (): Promise<number> {
  const line = server.logs().split('\n').find((l) => l.includes('demo pool queued'))
  const jobId = line === undefined ? undefined : (JSON.parse(line) as { job?: string }).job
  assert.ok(jobId !== undefined, `the server did not queue the demo pool:\n${server.logs().slice(-4000)}`)
  while (true) {
    const { json: job } = await api<{ status: string, done: number, total: number }>('GET', `/v1/index-jobs/${jobId}`)
    if (job.status === 'done') break
    assert.ok(job.status === 'queued' || job.status === 'running', `demo pool job ${job.status}`)
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  const { json } = await api<{ counts: { images: number } }>('GET', '/v1/info')
  assert.ok(json.counts.images > 100, `only ${json.counts.images} demo images indexed`)
  return json.counts.images
}

async function openAt (query = ''): Promise<{ page: Page, errors: string[] }> {
  return await openPage(browser, `${server.url}/${query}`)
}

async function typeQuery (page: Page, text: string): Promise<void> {
  const seq = await searchSeq(page)
  await page.fill('#query-text', text)
  await page.press('#query-text', 'Enter')
  await waitForSearch(page, seq)
}

// Debian's chromium is the only browser these tests use: never download one.
const noBrowser = existsSync(CHROMIUM) ? false : `no chromium at ${CHROMIUM} (set CHROMIUM_PATH)`

describe('the search page', { skip: noBrowser }, () => {
  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'align-search-web-'))
    await makeImportDir(path.join(tmp, 'import'))
    server = await startServer({
      DATA_DIR: path.join(tmp, 'data'),
      IMPORT_DIR: path.join(tmp, 'import'),
      DEMO_POOL: POOL,
      LOG_LEVEL: 'info', // the demo pool's job id is read from the log
      // variables a developer's shell might carry must not change the page under test
      API_KEY: '',
      API_KEY_READS: '',
      RATE_LIMIT_MAX: '',
      CORS_ORIGIN: ''
    }, { timeoutMs: TIMEOUT.server })
    await waitForDemoPool()
    browser = await launchBrowser()
  }, { timeout: TIMEOUT.browser })

  after(async () => {
    await browser?.close()
    await server?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  test('typing "cat face" and pressing Enter shows cat thumbnails first', { timeout: TIMEOUT.browser }, async () => {
    const { page, errors } = await openAt()
    await page.waitForFunction(() => /\d+ images/.test(document.querySelector('#info')?.textContent ?? ''))
    await typeQuery(page, 'cat face')
    const cards = await resultCards(page)
    assert.ok(cards.length >= 5, `expected a grid of results, got ${cards.length}`)
    const top5 = cards.slice(0, 5).map((c) => c.label)
    assert.ok(top5.some((l) => /cat/i.test(l)), `no cat among the top 5: ${top5.join(', ')}`)
    // the thumbnails really load
    await page.waitForFunction(() => [...document.querySelectorAll<HTMLImageElement>('#results .thumb')].slice(0, 5).every((img) => img.complete && img.naturalWidth > 0))
    assert.equal(await page.locator('.chip').count(), 1)
    assert.match(decodeURIComponent(page.url()), /q=t:cat\+face|q=t:cat face/)
    assert.deepEqual(errors, [])
    await page.close()
  })

  test('an uploaded image with a negative text term changes the ranking', { timeout: TIMEOUT.browser }, async () => {
    const { page, errors } = await openAt()
    let seq = await searchSeq(page)
    await page.setInputFiles('#query-file', path.join(POOL, 'twemoji-dog-face.png'))
    await waitForSearch(page, seq)
    assert.equal(await page.locator('.chip[data-kind="upload"]').count(), 1)
    const before = (await resultCards(page)).slice(0, 10).map((c) => c.id)
    assert.ok(before.length > 0)
    // an ad-hoc upload cannot be shared by link, and the page says so
    assert.match(await page.textContent('#share-note') ?? '', /not part of the link/)

    await typeQuery(page, 'dog')
    seq = await searchSeq(page)
    const sign = page.locator('.chip[data-kind="text"] .chip-sign')
    await sign.click()
    await waitForSearch(page, seq)
    assert.equal(await sign.getAttribute('aria-pressed'), 'true')
    assert.match(await page.textContent('.chip[data-kind="text"] .chip-weight') ?? '', /−1\.0/)
    const afterIds = (await resultCards(page)).slice(0, 10).map((c) => c.id)
    assert.notDeepEqual(afterIds, before, 'subtracting "dog" left the top 10 unchanged')
    assert.deepEqual(errors, [])
    await page.close()
  })

  test('"More like this" (by keyboard) adds an image chip and shows the images nearest to it, leaving it out', { timeout: TIMEOUT.browser }, async () => {
    const { page, errors } = await openAt()
    await typeQuery(page, 'cat face')
    const before = await resultCards(page)
    const chosen = before[1]
    assert.ok(chosen !== undefined)
    const seq = await searchSeq(page)
    await page.locator('#results .card').nth(1).locator('.more-like').focus()
    await page.keyboard.press('Enter')
    await waitForSearch(page, seq)
    assert.equal(await page.locator('.chip[data-kind="imageId"]').count(), 1)
    const afterCards = await resultCards(page)
    assert.ok(afterCards.length > 0)
    assert.ok(!afterCards.some((c) => c.id === chosen.id), `${chosen.label} itself is among its "more like this" results`)
    // the API's rule: the page shows what the same query (the text chip plus the image) returns by default …
    type Found = { results: Array<{ id: string }> }
    const query = [{ text: 'cat face' }, { imageId: chosen.id }]
    const byApi = await api<Found>('POST', '/v1/search', { query, k: afterCards.length })
    assert.deepEqual(afterCards.map((c) => c.id), byApi.json.results.map((r) => r.id))
    // … where the image itself would come first if asked for
    const withIt = await api<Found>('POST', '/v1/search', { query, k: 1, includeQueryImages: true })
    assert.equal(withIt.json.results[0]?.id, chosen.id)
    assert.notDeepEqual(afterCards.map((c) => c.id), before.map((c) => c.id))
    assert.match(decodeURIComponent(page.url()), new RegExp(`q=i:${chosen.id}`))
    assert.deepEqual(errors, [])
    await page.close()
  })

  test('a folder job shows its progress up to 100% and names the file that failed', { timeout: TIMEOUT.browser }, async () => {
    const { page, errors } = await openAt()
    await page.fill('#directory', 'batch')
    await page.click('#directory-form button[type="submit"]')
    const job = page.locator('.job').first()
    await job.locator('.progress').waitFor()
    await page.waitForFunction(() => ['done', 'failed', 'cancelled'].includes(document.querySelector<HTMLElement>('.job')?.dataset.status ?? ''), undefined, { timeout: 120_000 })
    assert.equal(await job.getAttribute('data-status'), 'done')
    const bar = job.locator('[role="progressbar"]')
    assert.equal(await bar.getAttribute('aria-valuemax'), String(BATCH + 1))
    assert.equal(await bar.getAttribute('aria-valuenow'), String(BATCH + 1))
    assert.equal(await bar.getAttribute('data-percent'), '100')
    const fill = await job.locator('.progress-fill').evaluate((el) => (el as HTMLElement).style.width)
    assert.equal(fill, '100%')
    const counts = await job.locator('.job-counts').textContent() ?? ''
    assert.match(counts, new RegExp(`${BATCH + 1} / ${BATCH + 1}`))
    assert.match(counts, /1 failed/)
    await job.locator('.job-errors summary').click()
    assert.match(await job.locator('.job-errors').textContent() ?? '', /broken\.jpg/)
    assert.equal(await job.locator('.job-cancel').isVisible(), false)
    assert.deepEqual(errors, [])
    await page.close()

    // the indexed files are called by their names: a search by one's own embedding shows it first,
    // labelled with its file name, and its path under IMPORT_DIR as the tooltip
    const bytes = readFileSync(path.join(tmp, 'import', 'batch', 'shape-2.png'))
    const { json: embedded } = await api<{ images: number[][] }>('POST', '/v1/embed', { images: [bytes.toString('base64')] })
    const vector = embedded.images[0]!.map((x) => x.toFixed(6)).join(',')
    const shown = await openAt(`?q=v:${vector}`)
    await shown.page.locator('#results .card').first().waitFor()
    const first = shown.page.locator('#results .card').first().locator('.card-label')
    assert.equal(await first.textContent(), 'shape-2.png')
    assert.equal(await first.getAttribute('title'), 'batch/shape-2.png')
    assert.deepEqual(shown.errors, [])
    await shown.page.close()
  })

  test('uploading files from the panel indexes them and reports each failure by name', { timeout: TIMEOUT.browser }, async () => {
    const dir = path.join(tmp, 'uploads')
    mkdirSync(dir, { recursive: true })
    const files = await Promise.all([0, 1].map(async (i) => {
      const file = path.join(dir, `upload-${i}.png`)
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="80" height="80"><rect width="80" height="80" fill="#${i === 0 ? '2a9d8f' : 'e76f51'}"/><rect x="20" y="20" width="${20 + i * 20}" height="40" fill="#000"/></svg>`
      writeFileSync(file, await sharp(Buffer.from(svg)).png().toBuffer())
      return file
    }))
    const broken = path.join(dir, 'not-an-image.png')
    writeFileSync(broken, 'plain text')
    const before = (await api<{ counts: { images: number } }>('GET', '/v1/info')).json.counts.images

    const { page, errors } = await openAt()
    await page.setInputFiles('#upload-files', [...files, broken])
    await page.click('#upload-form button[type="submit"]')
    const job = page.locator('.job').first()
    await page.waitForFunction(() => ['done', 'failed'].includes(document.querySelector<HTMLElement>('.job')?.dataset.status ?? ''), undefined, { timeout: 120_000 })
    assert.equal(await job.getAttribute('data-status'), 'done')
    assert.match(await job.locator('.job-title').textContent() ?? '', /Upload of 3 files/)
    assert.match(await job.locator('.job-counts').textContent() ?? '', /3 \/ 3 · 100% · 1 failed/)
    await job.locator('.job-errors summary').click()
    assert.match(await job.locator('.job-errors').textContent() ?? '', /not-an-image\.png/)
    // the header's count catches up
    await page.waitForFunction((n) => (document.querySelector('#info')?.textContent ?? '').includes(`${(n + 2).toLocaleString('en-US')} images`), before)
    assert.deepEqual(errors, [])
    await page.close()
  })

  test('API errors are shown in the API\'s own words', { timeout: TIMEOUT.browser }, async () => {
    // a vector term of the wrong dimension, straight from a shared URL
    const { page, errors } = await openAt('?q=v:0.1,0.2,0.3')
    await page.locator('#search-error').waitFor({ state: 'visible' })
    const expected = await api<{ message: string }>('POST', '/v1/search', { query: [{ vector: [0.1, 0.2, 0.3], weight: 1 }], target: 'images', k: 24, explain: true })
    assert.equal(expected.status, 400)
    assert.ok(expected.json.message.length > 0)
    assert.equal((await page.textContent('#search-error'))?.trim(), expected.json.message)

    // classification with no labels: the page sends it and shows the answer
    const png = path.join(POOL, 'twemoji-cat-face.png')
    await page.setInputFiles('#classify-file', png)
    await page.locator('#classify-preview').waitFor({ state: 'visible' })
    await page.click('#classify-form button[type="submit"]')
    await page.locator('#classify-error').waitFor({ state: 'visible' })
    const noLabels = await api<{ message: string }>('POST', '/v1/classify', { image: readFileSync(png).toString('base64'), labels: [] })
    assert.equal(noLabels.status, 400)
    assert.equal((await page.textContent('#classify-error'))?.trim(), noLabels.json.message)

    // and with labels it draws the probabilities
    await page.fill('#classify-labels', 'cat, car, pizza')
    await page.click('#classify-form button[type="submit"]')
    await page.locator('#classify-results .bar-row').nth(2).waitFor()
    assert.equal(await page.locator('#classify-error').isVisible(), false)
    assert.equal((await page.locator('#classify-results .bar-label').first().textContent())?.trim(), 'cat')
    assert.deepEqual(errors, [])
    await page.close()
  })

  test('on a 360 px screen the page fits and the grid has two columns', { timeout: TIMEOUT.browser }, async () => {
    const { page, errors } = await openAt('?q=t:smiling%20face')
    await page.setViewportSize({ width: 360, height: 800 })
    await page.locator('#results .card').first().waitFor()
    const { scrollWidth, columns } = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      columns: getComputedStyle(document.querySelector('#results .grid')!).gridTemplateColumns.split(' ').length
    }))
    assert.ok(scrollWidth <= 360, `page is ${scrollWidth}px wide`)
    assert.equal(columns, 2)
    // keyboard: from the text box, Tab reaches the image picker, then Search, with a visible outline
    await page.focus('#query-text')
    await page.keyboard.press('Tab')
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'query-file')
    await page.keyboard.press('Tab')
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'search-button')
    assert.notEqual(await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle), 'none')
    assert.deepEqual(errors, [])
    await page.close()
  })

  test('the README screenshot\'s query: the page shows what the API answers, and the README states the query', { timeout: TIMEOUT.browser }, async () => {
    // docs/screenshot.png is made by test/web/make-screenshot.ts from the same query
    assert.ok(readFileSync('README.md', 'utf8').includes(SCREENSHOT_CAPTION_QUERY), `README.md does not state the screenshot's query ${SCREENSHOT_CAPTION_QUERY}`)
    const { json } = await api<{ results: Array<{ id: string }> }>('POST', '/v1/search', SCREENSHOT_BODY)
    assert.equal(json.results[0]?.id, `${SCREENSHOT_IMAGE_ID}-dark-skin-tone`, 'the arithmetic no longer ranks the dark-skin-tone waving hand first')
    const { page, errors } = await openAt(SCREENSHOT_PAGE_QUERY)
    await page.locator('#results .card').first().waitFor()
    assert.deepEqual((await resultCards(page)).map((c) => c.id), json.results.map((r) => r.id))
    const card = page.locator('#results .card').first()
    await card.hover()
    const explain = card.locator('.explain')
    await explain.waitFor({ state: 'visible' })
    assert.equal(await explain.locator('li').count(), 2)
    assert.deepEqual(errors, [])
    await page.close()
  })
})
