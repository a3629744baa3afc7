import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildTestApp, errorBody, json } from '../../helpers/build-app.js'
import { FAKE_DIM, fakeImage } from '../../helpers/fake-services.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

describe('POST /v1/embed', { timeout: TIMEOUT.unit }, () => {
  it('embeds texts and images in request order', async (t) => {
    const { app } = await buildTestApp(t)
    const res = await app.inject({ method: 'POST', url: '/v1/embed', payload: { texts: ['a', 'b'], images: [fakeImage(1).toString('base64'), `data:image/png;base64,${fakeImage(2).toString('base64')}`] } })
    assert.equal(res.statusCode, 200)
    const body = json(res)
    assert.equal(body.model, 'fake-v1')
    assert.equal(body.dim, FAKE_DIM)
    assert.equal(body.texts.length, 2)
    assert.equal(body.images.length, 2)
    for (const v of [...body.texts, ...body.images]) {
      assert.equal(v.length, FAKE_DIM)
      assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5)
    }
    assert.notDeepEqual(body.texts[0], body.texts[1])
  })

  it('answers only what was asked', async (t) => {
    const { app } = await buildTestApp(t)
    const body = json(await app.inject({ method: 'POST', url: '/v1/embed', payload: { texts: ['a'] } }))
    assert.deepEqual(Object.keys(body).sort(), ['dim', 'model', 'texts'])
  })

  it('refuses empty requests, bad base64 and non-images', async (t) => {
    const { app } = await buildTestApp(t)
    let res = await app.inject({ method: 'POST', url: '/v1/embed', payload: {} })
    assert.equal(res.statusCode, 400)
    assert.match(errorBody(res).message, /at least one of "texts" or "images"/)
    res = await app.inject({ method: 'POST', url: '/v1/embed', payload: { images: [fakeImage(1).toString('base64'), '%%%'] } })
    assert.equal(res.statusCode, 400)
    assert.match(errorBody(res).message, /^body\/images\/1 is not valid base64/)
    res = await app.inject({ method: 'POST', url: '/v1/embed', payload: { texts: Array.from({ length: 257 }, () => 'a') } })
    assert.equal(res.statusCode, 400)
    assert.equal(errorBody(res).message, 'body/texts must NOT have more than 256 items')
    res = await app.inject({ method: 'POST', url: '/v1/embed', payload: { images: [Buffer.from('text').toString('base64')] } })
    assert.equal(res.statusCode, 415)
    assert.equal(errorBody(res).code, 'UNSUPPORTED_MEDIA_TYPE')
  })
})
