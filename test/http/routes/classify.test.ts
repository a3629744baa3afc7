import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildTestApp, errorBody, json, multipart } from '../../helpers/build-app.js'
import { fakeImage } from '../../helpers/fake-services.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

const image = fakeImage('cat').toString('base64')

describe('POST /v1/classify', { timeout: TIMEOUT.unit }, () => {
  it('answers probabilities sorted high to low', async (t) => {
    const { app, services } = await buildTestApp(t)
    const res = await app.inject({ method: 'POST', url: '/v1/classify', payload: { image, labels: ['cat', 'dog', 'car', 'tree'], template: 'a photo of a {}' } })
    assert.equal(res.statusCode, 200)
    const body = json(res)
    assert.equal(body.model, 'fake-v1')
    assert.deepEqual(body.results.map((r: any) => r.label).sort(), ['car', 'cat', 'dog', 'tree'])
    for (let i = 1; i < body.results.length; i++) assert.ok(body.results[i - 1].probability >= body.results[i].probability)
    const sum = body.results.reduce((s: number, r: any) => s + r.probability, 0)
    assert.ok(Math.abs(sum - 1) < 1e-6)
    assert.deepEqual(services.calls.at(-1), ['classify', { labels: ['cat', 'dog', 'car', 'tree'], template: 'a photo of a {}' }])
  })

  it('refuses bad labels, templates and images, naming the field', async (t) => {
    const { app } = await buildTestApp(t)
    const cases: Array<[unknown, number, RegExp]> = [
      [{ image, labels: [] }, 400, /^body\/labels must NOT have fewer than 2 items$/],
      [{ image, labels: ['cat'] }, 400, /^body\/labels must NOT have fewer than 2 items$/],
      [{ image, labels: Array.from({ length: 101 }, (_, i) => `l${i}`) }, 400, /^body\/labels must NOT have more than 100 items$/],
      [{ image, labels: ['a', ''] }, 400, /^body\/labels\/1 must NOT have fewer than 1 characters$/],
      [{ labels: ['a'] }, 400, /^body must have required property 'image'; expected fields: image \(required\), labels \(required\), template$/],
      [{ image, labels: ['a', 'b'], template: 'no placeholder' }, 400, /^body\/template must contain \{\}/],
      [{ image: 'not base64?', labels: ['a', 'b'] }, 400, /^body\/image is not valid base64/],
      [{ image: Buffer.from('hello').toString('base64'), labels: ['a', 'b'] }, 415, /not a supported image/]
    ]
    for (const [payload, status, message] of cases) {
      const res = await app.inject({ method: 'POST', url: '/v1/classify', payload: payload as object })
      assert.equal(res.statusCode, status, res.body)
      assert.match(errorBody(res).message, message)
    }
  })

  it('accepts multipart: an image part and labels as JSON, comma-separated or repeated', async (t) => {
    const { app, services } = await buildTestApp(t)
    const img = ['image', { bytes: fakeImage('cat'), filename: 'cat.png' }] as const
    for (const labels of [[['labels', '["cat","dog"]']], [['labels', 'cat, dog']], [['labels', 'cat'], ['labels', 'dog']]] as Array<Array<[string, string]>>) {
      const res = await app.inject({ method: 'POST', url: '/v1/classify', ...await multipart([img, ...labels, ['template', 'an icon of {}']]) })
      assert.equal(res.statusCode, 200, res.body)
      assert.equal(json(res).results.length, 2)
      assert.deepEqual(services.calls.at(-1), ['classify', { labels: ['cat', 'dog'], template: 'an icon of {}' }])
    }
  })

  it('refuses a multipart request without the image part or labels', async (t) => {
    const { app } = await buildTestApp(t)
    const cases: Array<[Parameters<typeof multipart>[0], RegExp]> = [
      [[['labels', 'cat']], /file part "image" is missing/],
      [[['photo', { bytes: fakeImage(1), filename: 'a.png' }], ['labels', 'cat']], /unexpected file part "photo"/],
      [[['image', { bytes: fakeImage(1), filename: 'a.png' }]], /"labels" is missing/],
      [[['image', { bytes: fakeImage(1), filename: 'a.png' }], ['labels', '[1, 2']], /not a valid JSON array/],
      [[['image', { bytes: fakeImage(1), filename: 'a.png' }], ['labels', '[1, 2]']], /^body\/labels\/0 must be string$/],
      [[['image', { bytes: fakeImage(1), filename: 'a.png' }], ['labels', ' , ']], /^body\/labels must NOT have fewer than 2 items$/]
    ]
    for (const [entries, message] of cases) {
      const res = await app.inject({ method: 'POST', url: '/v1/classify', ...await multipart(entries) })
      assert.equal(res.statusCode, 400, res.body)
      assert.match(errorBody(res).message, message)
    }
    // two images: the second is one file too many
    const res = await app.inject({ method: 'POST', url: '/v1/classify', ...await multipart([['image', { bytes: fakeImage(1), filename: 'a.png' }], ['image', { bytes: fakeImage(2), filename: 'b.png' }], ['labels', 'a']]) })
    assert.equal(res.statusCode, 413)
    assert.match(errorBody(res).message, /too many files: at most 1 file per request/)
  })
})
