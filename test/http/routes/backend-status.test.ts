import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { BackendHealth } from '../../../src/backends/ports.js'
import { BackendUnavailableError } from '../../../src/core/errors.js'
import { errorBody, json } from '../../helpers/build-app.js'
import { makeImage } from '../../helpers/fake-encoder.js'
import { buildRealApp, withHealth } from '../../helpers/real-services-app.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

describe('a backend that cannot be reached answers 503 with Retry-After on every route', { timeout: TIMEOUT.unit }, () => {
  it('BackendUnavailableError leaves as 503 BACKEND_UNAVAILABLE with its message and Retry-After, not a bare 500', async (t) => {
    let unreachable = false
    const { app } = await buildRealApp(t, {}, (backend) => {
      const images = backend.images
      const down = <A extends unknown[], R>(call: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
        if (unreachable) throw new BackendUnavailableError('PostgreSQL is unavailable: the connection was lost')
        return await call.apply(images, args)
      }
      return Object.assign(Object.create(backend) as typeof backend, {
        images: Object.assign(Object.create(images) as typeof images, { get: down(images.get), count: down(images.count), search: down(images.search) })
      })
    })
    unreachable = true
    for (const url of ['/v1/images/a', '/v1/info', '/v1/search?q=cat']) {
      const res = await app.inject({ method: 'GET', url })
      assert.equal(res.statusCode, 503, url)
      assert.equal(res.headers['retry-after'], '5', url)
      const err = errorBody(res)
      assert.equal(err.code, 'BACKEND_UNAVAILABLE', url)
      assert.equal(err.message, 'PostgreSQL is unavailable: the connection was lost', url)
    }
  })
})

describe('/ready follows the backend', { timeout: TIMEOUT.unit }, () => {
  it('answers 503 in the error shape with the backend\'s reason while it cannot serve, and 200 again once it can', async (t) => {
    let health: BackendHealth = { ok: true }
    const { app } = await buildRealApp(t, {}, (backend) => withHealth(backend, async () => health))
    assert.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 200)

    health = { ok: false, reason: 'connect ECONNREFUSED 127.0.0.1:5432' }
    let res = await app.inject({ method: 'GET', url: '/ready' })
    assert.equal(res.statusCode, 503)
    const err = errorBody(res)
    assert.equal(err.code, 'NOT_READY')
    assert.match(err.message, /connect ECONNREFUSED 127\.0\.0\.1:5432/)
    assert.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200, 'liveness does not depend on the backend')

    health = { ok: true }
    res = await app.inject({ method: 'GET', url: '/ready' })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(json(res), { status: 'ready' })
  })

  it('answers 503 with the message when the backend\'s health check itself throws', async (t) => {
    const { app } = await buildRealApp(t, {}, (backend) => withHealth(backend, async () => { throw new Error('pool exhausted') }))
    const res = await app.inject({ method: 'GET', url: '/ready' })
    assert.equal(res.statusCode, 503)
    assert.match(errorBody(res).message, /pool exhausted/)
  })

  it('answers 503 once the services are closing', async (t) => {
    const { app, services } = await buildRealApp(t)
    await services.close()
    const res = await app.inject({ method: 'GET', url: '/ready' })
    assert.equal(res.statusCode, 503)
    assert.equal(errorBody(res).code, 'NOT_READY')
  })
})

describe('GET /v1/info over the real services', { timeout: TIMEOUT.unit }, () => {
  it('names the SQLite backend and its index, with the configured HNSW parameters and the counts', async (t) => {
    const { app, services } = await buildRealApp(t, { HNSW_M: '12', HNSW_EF_CONSTRUCTION: '80', HNSW_EF_SEARCH: '40' })
    await services.addImages([{ bytes: await makeImage(1) }, { bytes: await makeImage(2) }])
    await services.addTexts([{ text: 'a cat' }])
    const res = await app.inject({ method: 'GET', url: '/v1/info' })
    assert.equal(res.statusCode, 200, res.body)
    const info = json(res)
    assert.equal(info.backend, 'sqlite')
    assert.deepEqual(info.counts, { images: 2, texts: 1, exact: true })
    const { capacity, ...index } = info.index
    assert.deepEqual(index, { kind: 'hnswlib', M: 12, efConstruction: 80, efSearch: 40, distance: 'cosine' })
    assert.ok(Number.isInteger(capacity) && capacity >= 2, `capacity ${String(capacity)} holds the images`)
  })
})
