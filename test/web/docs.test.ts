/**
 * Swagger UI at /docs in a real browser, reached the way a person on another machine reaches it:
 * over plain http at the server's network address (browsers exempt loopback from some CSP rules,
 * so a test on 127.0.0.1 would not see what they see).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import os from 'node:os'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/http/app.js'
import { testConfig } from '../helpers/build-app.js'
import { createFakeServices } from '../helpers/fake-services.js'
import { TIMEOUT } from '../helpers/timeouts.js'
import { CHROMIUM, launchBrowser, type Browser } from './browser.js'

/** a non-loopback IPv4 address of this machine, if it has one */
function networkAddress (): string | undefined {
  return Object.values(os.networkInterfaces()).flat().find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address
}

const address = networkAddress()
const skip = !existsSync(CHROMIUM) ? `no chromium at ${CHROMIUM} (set CHROMIUM_PATH)` : address === undefined ? 'no non-loopback network address' : false

describe('/docs off localhost', { skip }, () => {
  let app: FastifyInstance
  let browser: Browser
  let url: string

  before(async () => {
    app = await buildApp({ config: testConfig(), services: createFakeServices(), logger: false, defaultMetrics: false })
    await app.listen({ host: '0.0.0.0', port: 0 })
    const bound = app.server.address()
    assert.ok(typeof bound === 'object' && bound !== null)
    url = `http://${address!}:${bound.port}`
    browser = await launchBrowser()
  }, { timeout: TIMEOUT.browser })

  after(async () => {
    await browser?.close()
    await app?.close()
  })

  test('renders the API, with no CSP violation and whole descriptions', { timeout: TIMEOUT.browser }, async () => {
    const page = await browser.context.newPage()
    const problems: string[] = []
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()) })
    page.on('pageerror', (err) => problems.push(err.message))
    page.on('requestfailed', (r) => problems.push(`${r.url()}: ${r.failure()?.errorText ?? 'failed'}`))
    const res = await page.goto(`${url}/docs`)
    assert.equal(res?.status(), 200)
    assert.doesNotMatch(res?.headers()['content-security-policy'] ?? '', /upgrade-insecure-requests/)
    // the document loaded and Swagger drew it
    await page.locator('.swagger-ui .info .title').filter({ hasText: 'align-search' }).waitFor({ timeout: 30_000 })
    // open POST /v1/search: its description must run to the end, not stop at "<part name>"
    await page.locator('#operations-search-post_v1_search .opblock-summary').first().click()
    const description = page.locator('#operations-search-post_v1_search .opblock-description-wrapper').first()
    await description.waitFor()
    assert.match(await description.textContent() ?? '', /referenced from terms as \{"file": "<part name>"\}\./)
    assert.deepEqual(problems, [])
    await page.close()
  })
})
