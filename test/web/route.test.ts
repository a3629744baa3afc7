import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import Fastify from 'fastify'
import { TIMEOUT } from '../helpers/timeouts.js'
import { buildApp } from '../../src/http/app.js'
import { testConfig, errorBody } from '../helpers/build-app.js'
import { createFakeServices } from '../helpers/fake-services.js'
import webRoutes from '../../src/http/routes/web/index.js'
import { buildWeb, webIsStale } from '../../web/build.js'

test('the app serves the page at / with its script and styles, under the CSP', { timeout: TIMEOUT.server }, async (t) => {
  const app = await buildApp({ config: testConfig(), services: createFakeServices(), logger: false, web: true, defaultMetrics: false })
  t.after(async () => { await app.close() })

  const page = await app.inject({ url: '/' })
  assert.equal(page.statusCode, 200)
  assert.match(String(page.headers['content-type']), /^text\/html/)
  assert.match(page.body, /<script type="module" src="app.js"><\/script>/)
  assert.match(String(page.headers['content-security-policy']), /script-src 'self'/)

  const js = await app.inject({ url: '/app.js' })
  assert.equal(js.statusCode, 200)
  assert.match(String(js.headers['content-type']), /javascript/)
  const css = await app.inject({ url: '/app.css' })
  assert.equal(css.statusCode, 200)
  assert.match(String(css.headers['content-type']), /^text\/css/)

  // anything else is still the API's own 404, in the API's error shape
  const missing = await app.inject({ url: '/no-such-page' })
  assert.equal(missing.statusCode, 404)
  errorBody(missing)
})

test('without a built page, / says how to build it; once built, it is served', { timeout: TIMEOUT.server }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'align-web-dist-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const distDir = path.join(dir, 'dist')

  const unbuilt = Fastify({ logger: false })
  await unbuilt.register(webRoutes, { distDir })
  const res = await unbuilt.inject({ url: '/' })
  assert.equal(res.statusCode, 503)
  assert.match(res.body, /npm run build/)
  await unbuilt.close()

  assert.equal(webIsStale(distDir), true)
  await buildWeb({ distDir })
  const app = Fastify({ logger: false })
  await app.register(webRoutes, { distDir })
  t.after(async () => { await app.close() })
  assert.equal(webIsStale(distDir), false)
  const page = await app.inject({ url: '/' })
  assert.equal(page.statusCode, 200)
  assert.match(page.body, /align-search/)
  assert.equal((await app.inject({ url: '/app.js' })).statusCode, 200)
})
