import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildTestApp, errorBody, json, multipart, type TestApp } from '../../helpers/build-app.js'
import { FAKE_DIM, fakeImage } from '../../helpers/fake-services.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

/** an app with three images and two texts */
async function seeded (t: Parameters<typeof buildTestApp>[0], env: Record<string, string> = {}): Promise<TestApp> {
  const ctx = await buildTestApp(t, env)
  await ctx.services.addImages([
    { bytes: fakeImage('a'), id: 'a', metadata: { album: 'x', n: 1 } },
    { bytes: fakeImage('b'), id: 'b', metadata: { album: 'y', n: 2 } },
    { bytes: fakeImage('c'), id: 'c', metadata: { album: 'x', n: 3 } }
  ])
  await ctx.services.addTexts([{ id: 't1', text: 'a cat' }, { id: 't2', text: 'a dog' }])
  return ctx
}

const post = async (app: TestApp['app'], payload: unknown) => await app.inject({ method: 'POST', url: '/v1/search', payload: payload as Record<string, unknown> })

describe('POST /v1/search', { timeout: TIMEOUT.unit }, () => {
  it('answers ranked results with the model and the time taken', async (t) => {
    const { app, services } = await seeded(t)
    const res = await post(app, { query: [{ text: 'a cat' }] })
    assert.equal(res.statusCode, 200)
    const body = json(res)
    assert.deepEqual(Object.keys(body).sort(), ['model', 'results', 'tookMs'])
    assert.equal(body.model, 'fake-v1')
    assert.equal(typeof body.tookMs, 'number')
    assert.equal(body.results.length, 3)
    for (let i = 1; i < body.results.length; i++) assert.ok(body.results[i - 1].score >= body.results[i].score)
    // an image hit names where it came from (null: these were added without a source)
    assert.deepEqual(Object.keys(body.results[0]).sort(), ['id', 'metadata', 'score', 'source'])
    assert.equal(body.results[0].source, null)
    // defaults reach the services
    const [, req] = services.calls.at(-1) as [string, any]
    assert.equal(req.k, 10)
    assert.equal(req.target, 'images')
    assert.equal(req.explain, false)
    assert.equal(req.includeQueryImages, false)
    assert.deepEqual(req.query, [{ text: 'a cat', weight: 1 }])
  })

  it('passes k, minScore, filter, target and explain through', async (t) => {
    const { app, services } = await seeded(t)
    let res = await post(app, { query: [{ text: 'cat' }], k: 1, filter: { album: 'x' }, minScore: -1, explain: true })
    assert.equal(res.statusCode, 200)
    const body = json(res)
    assert.equal(body.results.length, 1)
    assert.equal(body.results[0].metadata.album, 'x')
    assert.equal(body.results[0].terms.length, 1)
    const [, req] = services.calls.at(-1) as [string, any]
    assert.deepEqual(req.filter, { album: 'x' })
    assert.equal(req.minScore, -1)
    // the image a query names is left out unless asked for
    res = await post(app, { query: [{ imageId: 'a' }, { text: 'cat', weight: 0.1 }] })
    assert.deepEqual(json(res).results.map((r: any) => r.id).sort(), ['b', 'c'])
    assert.equal((services.calls.at(-1) as [string, any])[1].includeQueryImages, false)
    res = await post(app, { query: [{ imageId: 'a' }], includeQueryImages: true })
    assert.equal(json(res).results[0].id, 'a')
    assert.equal((services.calls.at(-1) as [string, any])[1].includeQueryImages, true)
    res = await post(app, { query: [{ imageId: 'a' }], includeQueryImages: 'yes' })
    assert.equal(res.statusCode, 400)
    assert.equal(errorBody(res).message, 'body/includeQueryImages must be boolean')
    res = await post(app, { query: [{ imageId: 'a' }], target: 'texts' })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(json(res).results.map((r: any) => typeof r.text), ['string', 'string'])
  })

  it('combines weighted terms of every kind, negative weights included', async (t) => {
    const { app, services } = await seeded(t)
    const vector = Array.from({ length: FAKE_DIM }, (_, i) => (i === 0 ? 1 : 0))
    const res = await post(app, {
      query: [
        { text: 'cat', weight: 2 },
        { imageId: 'b', weight: -0.5 },
        { image: fakeImage('q').toString('base64') },
        { image: `data:image/png;base64,${fakeImage('r').toString('base64')}`, weight: 0.25 },
        { vector, weight: 0 }
      ],
      explain: true
    })
    assert.equal(res.statusCode, 200, res.body)
    const [, req] = services.calls.at(-1) as [string, any]
    assert.equal(req.query.length, 5)
    assert.deepEqual(req.query.map((q: any) => q.weight), [2, -0.5, 1, 0.25, 0])
    assert.ok(Buffer.isBuffer(req.query[2].image))
    assert.ok(req.query[2].image.equals(fakeImage('q')))
    assert.ok(req.query[3].image.equals(fakeImage('r')))
    assert.equal(json(res).results[0].terms.length, 5)
  })

  for (const [k, message] of [[0, 'body/k must be >= 1'], [-1, 'body/k must be >= 1'], [1e9, 'body/k must be <= 1000'], [2.5, 'body/k must be integer'], ['5', 'body/k must be integer']] as const) {
    it(`refuses k=${JSON.stringify(k)} naming the field`, async (t) => {
      const { app } = await seeded(t)
      const res = await post(app, { query: [{ text: 'cat' }], k })
      assert.equal(res.statusCode, 400)
      const err = errorBody(res)
      assert.equal(err.code, 'BAD_REQUEST')
      assert.equal(err.error, 'Bad Request')
      assert.equal(err.message, message)
    })
  }

  it('refuses weights that are not finite numbers in range', async (t) => {
    const { app } = await seeded(t)
    let res = await post(app, { query: [{ text: 'cat', weight: 'abc' }] })
    assert.equal(res.statusCode, 400)
    assert.equal(errorBody(res).message, 'body/query/0/weight must be number')
    res = await post(app, { query: [{ text: 'cat' }, { text: 'dog', weight: 1e300 }] })
    assert.equal(res.statusCode, 400)
    assert.equal(errorBody(res).message, 'body/query/1/weight must be <= 100')
    // 1e999 parses as Infinity: not a JSON number the schema accepts
    res = await app.inject({ method: 'POST', url: '/v1/search', headers: { 'content-type': 'application/json' }, payload: '{"query":[{"text":"cat","weight":1e999}]}' })
    assert.equal(res.statusCode, 400)
    assert.match(errorBody(res).message, /^body\/query\/0\/weight/)
    res = await post(app, { query: [{ text: 'cat', weight: null }] })
    assert.equal(res.statusCode, 400)
  })

  it('refuses malformed queries, naming the term', async (t) => {
    const { app } = await seeded(t)
    const cases: Array<[unknown, RegExp]> = [
      [{}, /^body must have required property 'query'; expected fields: query \(required\), target, k, minScore, filter, explain, includeQueryImages$/],
      [{ q: 'cat' }, /^body must have required property 'query'; expected fields: query \(required\), target, k, minScore, filter, explain, includeQueryImages$/],
      [{ query: [] }, /^body\/query must NOT have fewer than 1 items$/],
      [{ query: 'cat' }, /^body\/query must be array$/],
      [{ query: [{ weight: 1 }] }, /^body\/query\/0 must have exactly one of text, imageId, image, vector, file$/],
      [{ query: [{ text: 'a', imageId: 'b' }] }, /^body\/query\/0 must have exactly one of .*, got text and imageId$/],
      [{ query: [{ text: '' }] }, /^body\/query\/0\/text must NOT have fewer than 1 characters$/],
      [{ query: [{ text: 'a', colour: 'red' }] }, /^body\/query\/0 must NOT have additional properties: 'colour'; expected fields: text, imageId, image, vector, file, weight$/],
      [{ query: [{ text: 'a' }], target: 'videos' }, /^body\/target must be equal to one of the allowed values: "images", "texts"$/],
      [{ query: [{ text: 'a' }], minScore: 2 }, /^body\/minScore must be <= 1$/],
      [{ query: [{ text: 'a' }], filter: { album: ['x'] } }, /^filter\.album must be a string, a finite number, a boolean or an object of operators/],
      [{ query: [{ text: 'a' }], filter: { year: { $gt: 'soon' } } }, /^filter\.year\.\$gt must be a number or an ISO-8601 date string/],
      [{ query: [{ text: 'a' }], filter: 'album' }, /^filter must be an object/],
      [{ query: [{ text: 'a' }], sort: 'date' }, /^body must NOT have additional properties: 'sort'; expected fields: query \(required\), target, k, minScore, filter, explain, includeQueryImages$/],
      [{ query: [{ vector: [1, 2] }] }, new RegExp(`^body/query/0/vector must have ${FAKE_DIM} numbers`)],
      [{ query: [{ image: 'not base64!' }] }, /^body\/query\/0\/image is not valid base64/],
      [{ query: [{ text: 'a' }, { image: 'data:image/png,rawbytes' }] }, /^body\/query\/1\/image is a data: URL without ;base64/],
      [{ query: [{ file: 'img' }] }, /^body\/query\/0\/file is only valid in multipart\/form-data requests/]
    ]
    for (const [payload, message] of cases) {
      const res = await post(app, payload)
      assert.equal(res.statusCode, 400, `${JSON.stringify(payload)} → ${res.body}`)
      assert.match(errorBody(res).message, message, JSON.stringify(payload))
    }
  })

  it('answers 404 for an unknown imageId and 415 for bytes that are no image', async (t) => {
    const { app } = await seeded(t)
    let res = await post(app, { query: [{ imageId: 'nope' }] })
    assert.equal(res.statusCode, 404)
    assert.equal(errorBody(res).code, 'NOT_FOUND')
    res = await post(app, { query: [{ image: Buffer.from('hello world').toString('base64') }] })
    assert.equal(res.statusCode, 415)
    assert.equal(errorBody(res).code, 'UNSUPPORTED_MEDIA_TYPE')
  })

  it('answers 413 for a base64 image above MAX_UPLOAD_BYTES', async (t) => {
    const { app } = await seeded(t, { MAX_UPLOAD_BYTES: '2048' })
    const res = await post(app, { query: [{ image: Buffer.alloc(4096, 1).toString('base64') }] })
    assert.equal(res.statusCode, 413)
    const err = errorBody(res)
    assert.equal(err.code, 'PAYLOAD_TOO_LARGE')
    assert.match(err.message, /body\/query\/0\/image is larger than 2048 bytes/)
  })

  it('refuses a body that is not JSON', async (t) => {
    const { app } = await seeded(t)
    let res = await app.inject({ method: 'POST', url: '/v1/search', headers: { 'content-type': 'application/json' }, payload: '{"query": [' })
    assert.equal(res.statusCode, 400)
    assert.equal(errorBody(res).code, 'BAD_REQUEST')
    res = await app.inject({ method: 'POST', url: '/v1/search', headers: { 'content-type': 'text/plain' }, payload: 'cat' })
    assert.equal(res.statusCode, 415)
    assert.equal(errorBody(res).code, 'UNSUPPORTED_MEDIA_TYPE')
    res = await app.inject({ method: 'POST', url: '/v1/search', headers: { 'content-type': 'application/json' }, payload: '' })
    assert.equal(res.statusCode, 400)
    errorBody(res)
  })
})

describe('POST /v1/search as multipart/form-data', { timeout: TIMEOUT.unit }, () => {
  it('takes the JSON from the "query" part and images from file parts', async (t) => {
    const { app, services } = await seeded(t)
    const form = await multipart([
      ['query', JSON.stringify({ query: [{ file: 'photo' }, { text: 'cat', weight: -0.5 }], k: 2 })],
      ['photo', { bytes: fakeImage('upload'), filename: 'photo.png' }]
    ])
    const res = await app.inject({ method: 'POST', url: '/v1/search', ...form })
    assert.equal(res.statusCode, 200, res.body)
    assert.equal(json(res).results.length, 2)
    const [, req] = services.calls.at(-1) as [string, any]
    assert.ok(req.query[0].image.equals(fakeImage('upload')))
    assert.equal(req.query[0].weight, 1)
    assert.equal(req.query[1].weight, -0.5)
    assert.equal(req.k, 2)
  })

  it('refuses a reference to an unknown part, naming the term', async (t) => {
    const { app } = await seeded(t)
    const form = await multipart([
      ['photo', { bytes: fakeImage('upload'), filename: 'photo.png' }],
      ['query', JSON.stringify({ query: [{ file: 'picture' }] })]
    ])
    const res = await app.inject({ method: 'POST', url: '/v1/search', ...form })
    assert.equal(res.statusCode, 400)
    assert.match(errorBody(res).message, /^body\/query\/query\/0\/file names no file part: there is no file part named "picture"$/)
  })

  it('validates the JSON of the query part like a JSON body', async (t) => {
    const { app } = await seeded(t)
    let res = await app.inject({ method: 'POST', url: '/v1/search', ...await multipart([['query', JSON.stringify({ query: [{ text: 'a' }], k: 0 })]]) })
    assert.equal(res.statusCode, 400)
    assert.equal(errorBody(res).message, 'body/query/k must be >= 1')
    res = await app.inject({ method: 'POST', url: '/v1/search', ...await multipart([['query', '{not json']]) })
    assert.equal(res.statusCode, 400)
    assert.match(errorBody(res).message, /"query" must hold the search request as JSON/)
    res = await app.inject({ method: 'POST', url: '/v1/search', ...await multipart([['photo', { bytes: fakeImage(1), filename: 'a.png' }]]) })
    assert.equal(res.statusCode, 400)
    assert.match(errorBody(res).message, /"query" is missing/)
    res = await app.inject({ method: 'POST', url: '/v1/search', ...await multipart([['query', '{"query":[{"text":"a"}]}'], ['k', '3']]) })
    assert.equal(res.statusCode, 400)
    assert.match(errorBody(res).message, /unknown form field "k"/)
  })
})

describe('GET /v1/search', { timeout: TIMEOUT.unit }, () => {
  it('searches images with one text term', async (t) => {
    const { app, services } = await seeded(t)
    const res = await app.inject({ method: 'GET', url: '/v1/search?q=a%20cat&k=2' })
    assert.equal(res.statusCode, 200)
    assert.equal(json(res).results.length, 2)
    const [, req] = services.calls.at(-1) as [string, any]
    assert.deepEqual(req.query, [{ text: 'a cat', weight: 1 }])
    assert.equal(req.target, 'images')
    assert.equal(req.k, 2)
  })

  it('takes the metadata filter as JSON in `filter`', async (t) => {
    const { app, services } = await seeded(t)
    const filter = { album: { $in: ['x', 'y'] } }
    const res = await app.inject({ method: 'GET', url: `/v1/search?q=cat&k=3&filter=${encodeURIComponent(JSON.stringify(filter))}` })
    assert.equal(res.statusCode, 200)
    assert.ok(json(res).results.every((r: any) => ['x', 'y'].includes(r.metadata.album)))
    assert.deepEqual((services.calls.at(-1) as [string, any])[1].filter, filter)
    for (const [given, message] of [
      ['{album:x}', /^querystring\/filter must be a JSON object, e\.g\. \{"album":"holiday"\}; it is not valid JSON$/],
      ['[1,2]', /^querystring\/filter must be a JSON object/],
      ['{"album":{"$regex":"x"}}', /^filter\.album\.\$regex: unknown operator "\$regex"/]
    ] as const) {
      const bad = await app.inject({ method: 'GET', url: `/v1/search?q=cat&filter=${encodeURIComponent(given)}` })
      assert.equal(bad.statusCode, 400, given)
      assert.match(errorBody(bad).message, message)
      assert.equal(errorBody(bad).code, 'BAD_REQUEST')
    }
  })

  it('refuses a missing q and a bad k, naming the parameter', async (t) => {
    const { app } = await seeded(t)
    let res = await app.inject({ method: 'GET', url: '/v1/search' })
    assert.equal(res.statusCode, 400)
    assert.equal(errorBody(res).message, "querystring must have required property 'q'; expected fields: q (required), k, minScore, filter")
    for (const [k, message] of [['0', 'querystring/k must be >= 1'], ['abc', 'querystring/k must be integer'], ['1001', 'querystring/k must be <= 1000']]) {
      res = await app.inject({ method: 'GET', url: `/v1/search?q=cat&k=${k}` })
      assert.equal(res.statusCode, 400)
      assert.equal(errorBody(res).message, message)
    }
  })
})
