import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildTestApp, errorBody, multipart } from '../../helpers/build-app.js'
import { fakeImage } from '../../helpers/fake-services.js'
import { isTrustworthyOrigin, withTlsUpgrade } from '../../../src/http/plugins/security.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

const KEY = 'test-key-0123456789abcdef'
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })

describe('API key', { timeout: TIMEOUT.unit }, () => {
  it('is not needed when API_KEY is unset', async (t) => {
    const { app } = await buildTestApp(t)
    const res = await app.inject({ method: 'POST', url: '/v1/texts', payload: { texts: [{ text: 'a' }] } })
    assert.equal(res.statusCode, 200)
  })

  it('guards every write and delete, answering 401 without or with a wrong key', async (t) => {
    const { app, services } = await buildTestApp(t, { API_KEY: KEY })
    await services.addImages([{ bytes: fakeImage(1), id: 'one' }])
    const form = await multipart([['file', { bytes: fakeImage(2), filename: 'a.png' }]])
    const writes: Array<{ method: 'POST' | 'DELETE', url: string, payload?: object | Buffer, headers?: Record<string, string> }> = [
      { method: 'POST' as const, url: '/v1/images', ...form },
      { method: 'POST' as const, url: '/v1/texts', payload: { texts: [{ text: 'a' }] } },
      { method: 'POST' as const, url: '/v1/index-jobs', payload: { directory: 'x' } },
      { method: 'DELETE' as const, url: '/v1/images/one' },
      { method: 'DELETE' as const, url: '/v1/texts/one' },
      { method: 'DELETE' as const, url: '/v1/index-jobs/x' }
    ]
    for (const req of writes) {
      for (const headers of [{}, bearer('wrong'), bearer(`${KEY}x`), { authorization: KEY }, { authorization: `Basic ${KEY}` }]) {
        const res = await app.inject({ ...req, headers: { ...req.headers, ...headers } })
        assert.equal(res.statusCode, 401, `${req.method} ${req.url} with ${JSON.stringify(headers)}`)
        const err = errorBody(res)
        assert.equal(err.code, 'UNAUTHORIZED')
        assert.equal(err.error, 'Unauthorized')
        assert.equal(res.headers['www-authenticate'], 'Bearer')
      }
    }
    assert.equal(services.calls.filter(([m]) => m !== 'addImages').length, 0)
    assert.ok(services.images.has('one'))
    // with the key
    let res = await app.inject({ ...writes[0], headers: { ...writes[0]?.headers, ...bearer(KEY) } })
    assert.equal(res.statusCode, 200)
    res = await app.inject({ method: 'DELETE', url: '/v1/images/one', headers: { authorization: `bearer  ${KEY}` } })
    assert.equal(res.statusCode, 204)
  })

  it('leaves reads open unless API_KEY_READS=true', async (t) => {
    const open = await buildTestApp(t, { API_KEY: KEY })
    for (const req of [{ method: 'GET' as const, url: '/v1/info' }, { method: 'POST' as const, url: '/v1/search', payload: { query: [{ text: 'a' }] } }, { method: 'POST' as const, url: '/v1/embed', payload: { texts: ['a'] } }]) {
      assert.equal((await open.app.inject(req)).statusCode, 200, req.url)
    }
    const closed = await buildTestApp(t, { API_KEY: KEY, API_KEY_READS: 'true' })
    for (const req of [{ method: 'GET' as const, url: '/v1/info' }, { method: 'GET' as const, url: '/v1/search?q=a' }, { method: 'POST' as const, url: '/v1/search', payload: { query: [{ text: 'a' }] } }]) {
      const res = await closed.app.inject(req)
      assert.equal(res.statusCode, 401, req.url)
      errorBody(res)
      assert.equal((await closed.app.inject({ ...req, headers: bearer(KEY) })).statusCode, 200, req.url)
    }
    // operations endpoints stay open
    for (const url of ['/health', '/ready', '/metrics']) assert.equal((await closed.app.inject({ method: 'GET', url })).statusCode, 200, url)
  })
})

describe('CORS', { timeout: TIMEOUT.unit }, () => {
  it('is off by default', async (t) => {
    const { app } = await buildTestApp(t)
    let res = await app.inject({ method: 'GET', url: '/v1/info', headers: { origin: 'https://elsewhere.example' } })
    assert.equal(res.headers['access-control-allow-origin'], undefined)
    res = await app.inject({ method: 'OPTIONS', url: '/v1/search', headers: { origin: 'https://elsewhere.example', 'access-control-request-method': 'POST' } })
    assert.equal(res.headers['access-control-allow-origin'], undefined)
    assert.equal(res.statusCode, 404)
    errorBody(res)
  })

  it('allows the configured origins only', async (t) => {
    const { app } = await buildTestApp(t, { CORS_ORIGIN: 'https://app.example' })
    let res = await app.inject({ method: 'OPTIONS', url: '/v1/search', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } })
    assert.equal(res.statusCode, 204)
    assert.equal(res.headers['access-control-allow-origin'], 'https://app.example')
    res = await app.inject({ method: 'GET', url: '/v1/info', headers: { origin: 'https://evil.example' } })
    assert.equal(res.headers['access-control-allow-origin'], undefined)
  })
})

describe('security headers', { timeout: TIMEOUT.unit }, () => {
  it('sends a CSP that allows own scripts and data:/blob: images', async (t) => {
    const { app } = await buildTestApp(t)
    const res = await app.inject({ method: 'GET', url: '/health' })
    const csp = String(res.headers['content-security-policy'])
    assert.match(csp, /default-src 'self'/)
    assert.match(csp, /script-src 'self'(;|$)/)
    assert.match(csp, /img-src 'self' data: blob:/)
    assert.doesNotMatch(csp, /upgrade-insecure-requests/)
    assert.equal(res.headers['x-content-type-options'], 'nosniff')
  })

  it('/docs gets the same CSP: no upgrade-insecure-requests over http, inline styles allowed', async (t) => {
    const { app } = await buildTestApp(t)
    const res = await app.inject({ method: 'GET', url: '/docs/' })
    assert.equal(res.statusCode, 200)
    const csp = String(res.headers['content-security-policy'])
    assert.doesNotMatch(csp, /upgrade-insecure-requests/)
    assert.match(csp, /style-src 'self' 'unsafe-inline'/)
  })

  it('upgrade-insecure-requests and Cross-Origin-Opener-Policy only where a browser honours them', async (t) => {
    assert.equal(withTlsUpgrade("default-src 'self'", 'http'), "default-src 'self'")
    assert.equal(withTlsUpgrade("default-src 'self'", 'https'), "default-src 'self';upgrade-insecure-requests")
    assert.equal(withTlsUpgrade("default-src 'self';upgrade-insecure-requests", 'https'), "default-src 'self';upgrade-insecure-requests")
    for (const host of ['localhost', '127.0.0.1', '[::1]', 'app.localhost']) assert.equal(isTrustworthyOrigin('http', host), true, host)
    for (const host of ['192.168.1.20', 'nas.lan', '[fd00::2]']) assert.equal(isTrustworthyOrigin('http', host), false, host)
    assert.equal(isTrustworthyOrigin('https', 'nas.lan'), true)
    const { app } = await buildTestApp(t)
    const local = await app.inject({ method: 'GET', url: '/health', headers: { host: 'localhost:8080' } })
    assert.equal(local.headers['cross-origin-opener-policy'], 'same-origin')
    const lan = await app.inject({ method: 'GET', url: '/health', headers: { host: '192.168.1.20:8080' } })
    assert.equal(lan.headers['cross-origin-opener-policy'], undefined)
  })
})

describe('rate limiting', { timeout: TIMEOUT.unit }, () => {
  it('is off by default', async (t) => {
    const { app } = await buildTestApp(t)
    for (let i = 0; i < 5; i++) assert.equal((await app.inject({ method: 'GET', url: '/v1/info' })).statusCode, 200)
  })

  it('answers 429 in the error shape past RATE_LIMIT_MAX, under /v1 only', async (t) => {
    const { app } = await buildTestApp(t, { RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW: '1m' })
    assert.equal((await app.inject({ method: 'GET', url: '/v1/info' })).statusCode, 200)
    assert.equal((await app.inject({ method: 'GET', url: '/v1/info' })).statusCode, 200)
    const res = await app.inject({ method: 'GET', url: '/v1/info' })
    assert.equal(res.statusCode, 429)
    const err = errorBody(res)
    assert.equal(err.code, 'RATE_LIMITED')
    assert.match(err.message, /at most 2 requests per 60 s/)
    assert.ok(res.headers['retry-after'] !== undefined)
    for (let i = 0; i < 4; i++) assert.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200)
  })
})

describe('errors', { timeout: TIMEOUT.unit }, () => {
  it('answers unknown routes with 404 in the error shape', async (t) => {
    const { app } = await buildTestApp(t)
    for (const [method, url] of [['GET', '/nope'], ['POST', '/v1/nope'], ['PUT', '/v1/search']] as const) {
      const res = await app.inject({ method, url })
      assert.equal(res.statusCode, 404)
      const err = errorBody(res)
      assert.equal(err.code, 'NOT_FOUND')
      assert.equal(err.message, `Route ${method} ${url} not found`)
    }
  })

  it('answers 415 for unsupported content types, and for forms sent to JSON-only routes', async (t) => {
    const { app } = await buildTestApp(t)
    let res = await app.inject({ method: 'POST', url: '/v1/texts', headers: { 'content-type': 'application/xml' }, payload: '<texts/>' })
    assert.equal(res.statusCode, 415)
    assert.match(errorBody(res).message, /application\/xml/)
    res = await app.inject({ method: 'POST', url: '/v1/embed', ...await multipart([['texts', 'a']]) })
    assert.equal(res.statusCode, 415)
    assert.equal(errorBody(res).code, 'UNSUPPORTED_MEDIA_TYPE')
  })

  it('answers router and parser errors in the same shape', async (t) => {
    const { app } = await buildTestApp(t)
    let res = await app.inject({ method: 'GET', url: `/v1/images/${'x'.repeat(600)}` })
    assert.equal(res.statusCode, 414)
    assert.equal(errorBody(res).code, 'URI_TOO_LONG')
    res = await app.inject({ method: 'GET', url: '/v1/images/%E0%A4%A' })
    assert.equal(res.statusCode, 400)
    assert.equal(errorBody(res).code, 'BAD_REQUEST')
    res = await app.inject({ method: 'POST', url: '/v1/images', headers: { 'content-type': 'multipart/form-data' }, payload: 'garbage' })
    assert.equal(res.statusCode, 400)
    assert.match(errorBody(res).message, /^malformed multipart\/form-data/)
    res = await app.inject({ method: 'POST', url: '/v1/images', headers: { 'content-type': 'multipart/form-data; boundary=xyz' }, payload: '--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nabc' })
    assert.equal(res.statusCode, 400)
    assert.match(errorBody(res).message, /^malformed multipart\/form-data/)
  })

  it('answers 413 for a JSON body above MAX_BODY_BYTES', async (t) => {
    const { app } = await buildTestApp(t, { MAX_BODY_BYTES: '2048' })
    const res = await app.inject({ method: 'POST', url: '/v1/embed', payload: { texts: ['x'.repeat(1500), 'y'.repeat(1500)] } })
    assert.equal(res.statusCode, 413)
    assert.equal(errorBody(res).code, 'PAYLOAD_TOO_LARGE')
  })

  it('hides the details of unexpected errors', async (t) => {
    const { app, services } = await buildTestApp(t)
    services.search = async () => { throw new Error('secret: /var/lib/db is corrupt') }
    const res = await app.inject({ method: 'GET', url: '/v1/search?q=a' })
    assert.equal(res.statusCode, 500)
    const err = errorBody(res)
    assert.deepEqual(err, { statusCode: 500, code: 'INTERNAL_ERROR', error: 'Internal Server Error', message: 'Internal Server Error' })
  })

  it('keeps the message of deliberate 5xx errors', async (t) => {
    const { app, services } = await buildTestApp(t)
    const { StorageFullError } = await import('../../../src/core/errors.js')
    services.addTexts = async () => { throw new StorageFullError('disk full: free space under DATA_DIR') }
    const res = await app.inject({ method: 'POST', url: '/v1/texts', payload: { texts: [{ text: 'a' }] } })
    assert.equal(res.statusCode, 507)
    assert.deepEqual(errorBody(res), { statusCode: 507, code: 'INSUFFICIENT_STORAGE', error: 'Insufficient Storage', message: 'disk full: free space under DATA_DIR' })
  })
})
