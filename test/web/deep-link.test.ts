/**
 * Links into the page: `/?q=pizza`, the GET API's form, opens as a text search for "pizza",
 * just as the page's own `/?q=t:pizza` does. (Fake services: this is about the page.)
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/http/app.js'
import { testConfig } from '../helpers/build-app.js'
import { createFakeServices, fakeImage, type FakeServices } from '../helpers/fake-services.js'
import { TIMEOUT } from '../helpers/timeouts.js'
import { CHROMIUM, launchBrowser, openPage, resultCards, waitForSearch, type Browser } from './browser.js'

const noBrowser = existsSync(CHROMIUM) ? false : `no chromium at ${CHROMIUM} (set CHROMIUM_PATH)`

describe('links into the page', { skip: noBrowser }, () => {
  let app: FastifyInstance
  let services: FakeServices
  let browser: Browser
  let url: string

  before(async () => {
    services = createFakeServices()
    await services.addImages(['pizza', 'cat', 'car'].map((label) => ({ bytes: fakeImage(label), id: label, metadata: { label } })))
    app = await buildApp({ config: testConfig(), services, logger: false, defaultMetrics: false })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const bound = app.server.address()
    assert.ok(typeof bound === 'object' && bound !== null)
    url = `http://127.0.0.1:${bound.port}`
    browser = await launchBrowser()
  }, { timeout: TIMEOUT.browser })

  after(async () => {
    await browser?.close()
    await app?.close()
  })

  /** the text terms of the searches the page sent */
  const searchedTexts = (): string[][] => services.calls
    .filter(([name]) => name === 'search')
    .map(([, req]) => (req as { query: Array<{ text?: string }> }).query.map((t) => t.text ?? '(not text)'))

  for (const [link, k] of [['/?q=pizza&k=2', 2], ['/?q=t:pizza', 24]] as const) {
    test(`${link} searches for the text "pizza"`, { timeout: TIMEOUT.browser }, async () => {
      services.calls.length = 0
      const { page, errors } = await openPage(browser, url + link)
      await waitForSearch(page, 0)
      assert.deepEqual(searchedTexts(), [['pizza']])
      assert.equal((await page.locator('.chip[data-kind="text"] .chip-label').textContent())?.replace(/^Text:\s*/, ''), 'pizza')
      assert.equal(await page.inputValue('#query-text'), '')
      assert.equal((await resultCards(page)).length, Math.min(k, 3))
      // the address bar now holds the page's own form, which a reload reads the same way
      assert.equal(new URL(page.url()).searchParams.getAll('q').join(), 't:pizza')
      assert.deepEqual(errors, [])
      await page.close()
    })
  }
})
