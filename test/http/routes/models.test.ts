import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { buildRealApp } from '../../helpers/real-services-app.js'
import { buildTestApp } from '../../helpers/build-app.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

const KEY = 'a-key-of-sixteen-chars'
const auth = { authorization: `Bearer ${KEY}` }

describe('/v1/models', () => {
  it('shows the active model and no standby; /v1/info says the same', { timeout: TIMEOUT.unit }, async (t) => {
    const { app, services } = await buildRealApp(t)
    const res = await app.inject({ method: 'GET', url: '/v1/models' })
    assert.equal(res.statusCode, 200)
    const body = res.json()
    assert.equal(body.active.modelId, services.model.modelId)
    assert.equal(body.standby, null)
    assert.equal(body.running, false)
    assert.equal((await app.inject({ method: 'GET', url: '/v1/info' })).json().standby, null)
  })

  it('switching needs the write key, and modelDir must lie under MODELS_DIR (400 in the one error shape)', { timeout: TIMEOUT.unit }, async (t) => {
    const { app } = await buildRealApp(t, { API_KEY: KEY })
    const none = await app.inject({ method: 'POST', url: '/v1/models/switch', payload: { modelDir: 'align-mini' } })
    assert.equal(none.statusCode, 401)
    const outside = await app.inject({ method: 'POST', url: '/v1/models/switch', headers: auth, payload: { modelDir: '../../etc' } })
    assert.equal(outside.statusCode, 400)
    assert.deepEqual(Object.keys(outside.json()).sort(), ['code', 'error', 'message', 'statusCode'])
    assert.match(outside.json().message, /not a folder under MODELS_DIR/)
    const bad = await app.inject({ method: 'POST', url: '/v1/models/switch', headers: auth, payload: { modelDir: 'align-mini', lowResolution: 'upscale' } })
    assert.equal(bad.statusCode, 400)
    assert.equal((await app.inject({ method: 'POST', url: '/v1/models/swap', headers: auth })).statusCode, 404)
    assert.equal((await app.inject({ method: 'DELETE', url: '/v1/models/standby', headers: auth })).statusCode, 404)
  })

  it('a server whose services cannot switch models answers 501', { timeout: TIMEOUT.unit }, async (t) => {
    const { app } = await buildTestApp(t)
    const res = await app.inject({ method: 'GET', url: '/v1/models' })
    assert.equal(res.statusCode, 501)
    assert.equal(res.json().code, 'NOT_IMPLEMENTED')
  })
})
