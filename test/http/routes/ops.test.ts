import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildTestApp, errorBody, json } from '../../helpers/build-app.js'
import { fakeImage } from '../../helpers/fake-services.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

describe('/health, /ready and readiness of /v1', { timeout: TIMEOUT.unit }, () => {
  it('/health is always 200; /ready and /v1 answer 503 until the services are ready', async (t) => {
    const { app, services } = await buildTestApp(t)
    services.setReady(false)
    let res = await app.inject({ method: 'GET', url: '/health' })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(json(res), { status: 'ok' })
    res = await app.inject({ method: 'GET', url: '/ready' })
    assert.equal(res.statusCode, 503)
    assert.equal(errorBody(res).code, 'NOT_READY')
    for (const [method, url] of [['GET', '/v1/info'], ['GET', '/v1/search?q=a'], ['POST', '/v1/search'], ['GET', '/v1/images/a']] as const) {
      res = await app.inject({ method, url, ...(method === 'POST' ? { payload: { query: [{ text: 'a' }] } } : {}) })
      assert.equal(res.statusCode, 503, url)
      const err = errorBody(res)
      assert.equal(err.error, 'Service Unavailable')
      assert.match(err.message, /still loading/)
    }
    services.setReady(true)
    res = await app.inject({ method: 'GET', url: '/ready' })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(json(res), { status: 'ready' })
  })
})

describe('GET /v1/info', { timeout: TIMEOUT.unit }, () => {
  it('describes the model, the index, the counts and the limits', async (t) => {
    const { app, services } = await buildTestApp(t, { EXECUTION_PROVIDER: 'cuda', MAX_FILES: '10' })
    await services.addTexts([{ text: 'a' }])
    const res = await app.inject({ method: 'GET', url: '/v1/info' })
    assert.equal(res.statusCode, 200)
    const info = json(res)
    assert.equal(typeof info.version, 'string')
    assert.deepEqual(info.model, {
      name: 'fake', modelId: 'fake-v1', dim: 8, temperature: 0.07, promptTemplate: 'a photo of {}', maxTextLength: 32, license: 'CC0-1.0', source: 'test/helpers/fake-services.ts'
    })
    assert.deepEqual(info.counts, { images: 0, texts: 1, exact: true })
    assert.equal(info.backend, 'sqlite')
    assert.deepEqual(info.index, { kind: 'hnswlib', M: 16, efConstruction: 200, efSearch: 64, capacity: 1024, distance: 'cosine' })
    assert.equal(info.executionProvider, 'cuda')
    assert.equal(info.limits.maxFiles, 10)
    assert.deepEqual(info.auth, { writes: false, reads: false })
  })
})

describe('GET /metrics', { timeout: TIMEOUT.unit }, () => {
  it('exposes request durations by route and the stage histograms', async (t) => {
    const { app } = await buildTestApp(t)
    await app.inject({ method: 'POST', url: '/v1/search', payload: { query: [{ text: 'a' }] } })
    await app.inject({ method: 'POST', url: '/v1/embed', payload: { images: [fakeImage(1).toString('base64')] } })
    await app.inject({ method: 'GET', url: '/v1/images/some-id' })
    const res = await app.inject({ method: 'GET', url: '/metrics' })
    assert.equal(res.statusCode, 200)
    assert.match(String(res.headers['content-type']), /^text\/plain/)
    const text = res.body
    assert.match(text, /http_request_duration_seconds_count\{route="\/v1\/search",method="POST",status="200"\} 1/)
    // the route template, not the URL
    assert.match(text, /http_request_duration_seconds_count\{route="\/v1\/images\/:id",method="GET",status="404"\} 1/)
    assert.match(text, /align_stage_seconds_count\{stage="search"\} 1/)
    assert.match(text, /align_stage_seconds_count\{stage="decode"\} 1/)
    assert.match(text, /align_stage_seconds_count\{stage="encode"\} 1/)
  })
})

describe('API documentation', { timeout: TIMEOUT.unit }, () => {
  it('serves Swagger UI at /docs and the document at /openapi.json', async (t) => {
    const { app } = await buildTestApp(t)
    let res = await app.inject({ method: 'GET', url: '/docs' })
    if (res.statusCode === 302) res = await app.inject({ method: 'GET', url: String(res.headers.location) })
    assert.equal(res.statusCode, 200)
    assert.match(res.body, /swagger-ui/i)
    res = await app.inject({ method: 'GET', url: '/openapi.json' })
    assert.equal(res.statusCode, 200)
    const doc = json(res)
    assert.equal(doc.openapi, '3.1.0')
    assert.ok(doc.paths['/v1/search'].post)
  })
})
