import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildTestApp, errorBody, json, multipart, type FormEntry } from '../../helpers/build-app.js'
import { createFakeServices, fakeImage } from '../../helpers/fake-services.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

const file = (seed: string | number, filename = `${seed}.png`): FormEntry => ['file', { bytes: fakeImage(seed), filename }]

describe('POST /v1/images', { timeout: TIMEOUT.unit }, () => {
  it('indexes files, applying id and metadata fields to the file that follows them', async (t) => {
    const { app, services } = await buildTestApp(t)
    const form = await multipart([
      ['id', 'first'],
      ['metadata', JSON.stringify({ album: 'holiday', n: 1 })],
      file(1),
      file(2), // no fields: generated id, empty metadata
      ['metadata', JSON.stringify({ album: 'work' })],
      ['other-part-name', { bytes: fakeImage(3), filename: 'three.jpg' }]
    ])
    const res = await app.inject({ method: 'POST', url: '/v1/images', ...form })
    assert.equal(res.statusCode, 200, res.body)
    const { items } = json(res)
    assert.equal(items.length, 3)
    assert.deepEqual(items.map((i: any) => i.status), ['indexed', 'indexed', 'indexed'])
    assert.equal(items[0].id, 'first')
    assert.deepEqual(items.map((i: any) => i.filename), ['1.png', '2.png', 'three.jpg'])
    assert.deepEqual(services.images.get('first')?.record.metadata, { album: 'holiday', n: 1 })
    assert.deepEqual(services.images.get(items[1].id)?.record.metadata, {})
    assert.deepEqual(services.images.get(items[2].id)?.record.metadata, { album: 'work' })
    const [, sent] = services.calls.at(-1) as [string, any[]]
    assert.ok(sent[0].bytes.equals(fakeImage(1)))
    // each file's name is its source
    assert.deepEqual(sent.map((it) => it.source), ['1.png', '2.png', 'three.jpg'])
    const rec = json(await app.inject({ method: 'GET', url: '/v1/images/first' }))
    assert.equal(rec.source, '1.png')
  })

  it('answers per-item outcomes: duplicate and failed items do not fail the request', async (t) => {
    const { app } = await buildTestApp(t)
    await app.inject({ method: 'POST', url: '/v1/images', ...await multipart([file('x')]) })
    const res = await app.inject({
      method: 'POST',
      url: '/v1/images',
      ...await multipart([file('x'), ['file', { bytes: Buffer.from('plain text'), filename: 'notes.txt', type: 'text/plain' }], file('y')])
    })
    assert.equal(res.statusCode, 200)
    const { items } = json(res)
    assert.deepEqual(items.map((i: any) => i.status), ['duplicate', 'failed', 'indexed'])
    assert.match(items[1].error, /not a supported image/)
    assert.equal(items[1].code, 'UNSUPPORTED_MEDIA_TYPE')
  })

  it('answers 415 in the error shape, with each file\'s reason, when no file is an image', async (t) => {
    const { app, services } = await buildTestApp(t)
    const res = await app.inject({ method: 'POST', url: '/v1/images', ...await multipart([['file', { bytes: Buffer.from('a'), filename: 'a.txt' }], ['file', { bytes: Buffer.from('b'), filename: 'b.txt' }]]) })
    assert.equal(res.statusCode, 415, res.body)
    const body = errorBody(res)
    assert.equal(body.code, 'UNSUPPORTED_MEDIA_TYPE')
    assert.match(body.message, /^none of the 2 files was indexed: a\.txt: input is not a supported image .*; b\.txt: /)
    assert.deepEqual(body.items?.map((i) => [i.filename, i.status, i.code]), [['a.txt', 'failed', 'UNSUPPORTED_MEDIA_TYPE'], ['b.txt', 'failed', 'UNSUPPORTED_MEDIA_TYPE']])
    assert.ok(body.items?.every((i) => typeof i.error === 'string' && i.error.length > 0))
    assert.equal(services.images.size, 0)

    // one text file alone, as a newcomer tries it
    const one = await app.inject({ method: 'POST', url: '/v1/images', ...await multipart([['file', { bytes: Buffer.from('notes'), filename: 'notes.txt' }]]) })
    assert.equal(one.statusCode, 415)
    assert.match(errorBody(one).message, /^notes\.txt was not indexed: input is not a supported image/)
  })

  it('when every file fails, the status is their common reason; different reasons answer 400, a server-side one its 5xx', async (t) => {
    const services = createFakeServices()
    const { app } = await buildTestApp(t, {}, services)
    const reasons: Record<string, string> = {
      BAD_REQUEST: 'items[0].id must match …',
      CONFLICT: 'id "x" is already used by another image',
      PAYLOAD_TOO_LARGE: 'image is larger than MAX_IMAGE_PIXELS',
      UNSUPPORTED_MEDIA_TYPE: 'input is not a supported image',
      INSUFFICIENT_STORAGE: 'the disk is full'
    }
    const cases: Array<[string[], number, string]> = [
      [['BAD_REQUEST'], 400, 'BAD_REQUEST'],
      [['CONFLICT', 'CONFLICT'], 409, 'CONFLICT'],
      [['PAYLOAD_TOO_LARGE'], 413, 'PAYLOAD_TOO_LARGE'],
      [['UNSUPPORTED_MEDIA_TYPE', 'UNSUPPORTED_MEDIA_TYPE', 'UNSUPPORTED_MEDIA_TYPE'], 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [['UNSUPPORTED_MEDIA_TYPE', 'PAYLOAD_TOO_LARGE'], 400, 'BAD_REQUEST'],
      [['UNSUPPORTED_MEDIA_TYPE', 'INSUFFICIENT_STORAGE'], 507, 'INSUFFICIENT_STORAGE']
    ]
    for (const [codes, status, code] of cases) {
      services.addImages = async (items) => items.map((it, i) => ({ id: it.id ?? '', status: 'failed' as const, code: codes[i]!, error: reasons[codes[i]!]! }))
      const res = await app.inject({ method: 'POST', url: '/v1/images', ...await multipart(codes.map((_, i) => file(i, `f${i}.png`))) })
      assert.equal(res.statusCode, status, `${codes.join('+')}: ${res.body}`)
      const body = errorBody(res)
      assert.equal(body.code, code)
      assert.deepEqual(body.items?.map((i) => i.code), codes)
      assert.deepEqual(body.items?.map((i) => i.error), codes.map((c) => reasons[c]))
      assert.match(body.message, codes.length > 2 ? /; and 1 more/ : /f0\.png/)
    }
  })

  it('a mixed result stays 200 with per-item statuses (a duplicate counts as stored)', async (t) => {
    const { app } = await buildTestApp(t)
    await app.inject({ method: 'POST', url: '/v1/images', ...await multipart([file('kept')]) })
    const res = await app.inject({ method: 'POST', url: '/v1/images', ...await multipart([file('kept'), ['file', { bytes: Buffer.from('x'), filename: 'x.txt' }]]) })
    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual(json(res).items.map((i: any) => i.status), ['duplicate', 'failed'])
  })

  it('refuses a request with no file part', async (t) => {
    const { app } = await buildTestApp(t)
    let res = await app.inject({ method: 'POST', url: '/v1/images', ...await multipart([]) })
    assert.equal(res.statusCode, 400)
    assert.match(errorBody(res).message, /no image file/)
    res = await app.inject({ method: 'POST', url: '/v1/images', ...await multipart([file(1), ['id', 'dangling']]) })
    assert.equal(res.statusCode, 400)
    assert.match(errorBody(res).message, /not followed by a file part/)
  })

  it('refuses bad fields, naming them', async (t) => {
    const { app } = await buildTestApp(t)
    const cases: Array<[FormEntry[], RegExp]> = [
      [[['metadata', '{oops'], file(1)], /form field "metadata" before file #1 must be a JSON object, got invalid JSON/],
      [[['metadata', '[1,2]'], file(1)], /must be a JSON object/],
      [[file(1), ['id', 'a b/c'], file(2)], /form field "id" before file #2: id must be/],
      [[['id', 'a'], ['id', 'b'], file(1)], /two "id" fields for one file/],
      [[['album', 'x'], file(1)], /unknown form field "album"/]
    ]
    for (const [entries, message] of cases) {
      const res = await app.inject({ method: 'POST', url: '/v1/images', ...await multipart(entries) })
      assert.equal(res.statusCode, 400, res.body)
      assert.match(errorBody(res).message, message)
    }
  })

  it('answers 413 for more than MAX_FILES files, saying the limit', async (t) => {
    const { app, services } = await buildTestApp(t, { MAX_FILES: '3' })
    const res = await app.inject({ method: 'POST', url: '/v1/images', ...await multipart([file(1), file(2), file(3), file(4)]) })
    assert.equal(res.statusCode, 413)
    const err = errorBody(res)
    assert.equal(err.code, 'PAYLOAD_TOO_LARGE')
    assert.equal(err.message, 'too many files: at most 3 files per request')
    assert.equal(services.calls.length, 0)
  })

  it('accepts 64 files by default and refuses 65', async (t) => {
    const { app } = await buildTestApp(t)
    const files = Array.from({ length: 65 }, (_, i) => file(i))
    let res = await app.inject({ method: 'POST', url: '/v1/images', ...await multipart(files.slice(0, 64)) })
    assert.equal(res.statusCode, 200)
    assert.equal(json(res).items.length, 64)
    res = await app.inject({ method: 'POST', url: '/v1/images', ...await multipart(files) })
    assert.equal(res.statusCode, 413)
    assert.match(errorBody(res).message, /at most 64 files/)
  })

  it('answers 413 for a file above MAX_UPLOAD_BYTES, naming it', async (t) => {
    const { app } = await buildTestApp(t, { MAX_UPLOAD_BYTES: '1024' })
    const big = Buffer.concat([fakeImage('big'), Buffer.alloc(4096)])
    const res = await app.inject({ method: 'POST', url: '/v1/images', ...await multipart([file(1), ['file', { bytes: big, filename: 'big.png' }]]) })
    assert.equal(res.statusCode, 413)
    assert.equal(errorBody(res).message, 'file "big.png" is larger than 1024 bytes (MAX_UPLOAD_BYTES)')
  })

  it('answers 415 to a JSON body', async (t) => {
    const { app } = await buildTestApp(t)
    const res = await app.inject({ method: 'POST', url: '/v1/images', payload: { image: 'abc' } })
    assert.equal(res.statusCode, 415)
    assert.match(errorBody(res).message, /multipart\/form-data/)
  })
})

describe('GET and DELETE /v1/images/:id', { timeout: TIMEOUT.unit }, () => {
  it('reads the record, serves the thumbnail with cache headers, deletes', async (t) => {
    const { app, services } = await buildTestApp(t)
    await services.addImages([{ bytes: fakeImage(1), id: 'one', metadata: { a: 1 } }])
    let res = await app.inject({ method: 'GET', url: '/v1/images/one' })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(Object.keys(json(res)).sort(), ['createdAt', 'height', 'id', 'metadata', 'sha256', 'source', 'width'])
    assert.deepEqual(json(res).metadata, { a: 1 })
    assert.equal(json(res).source, null, 'an image added without a source says so')

    res = await app.inject({ method: 'GET', url: '/v1/images/one/thumbnail' })
    assert.equal(res.statusCode, 200)
    assert.equal(res.headers['content-type'], 'image/webp')
    assert.match(String(res.headers['cache-control']), /max-age=\d+/)
    const etag = String(res.headers.etag)
    assert.match(etag, /^".+"$/)
    assert.equal(res.rawPayload.toString(), 'RIFF-webp-one')
    res = await app.inject({ method: 'GET', url: '/v1/images/one/thumbnail', headers: { 'if-none-match': etag } })
    assert.equal(res.statusCode, 304)
    assert.equal(res.body, '')

    res = await app.inject({ method: 'DELETE', url: '/v1/images/one' })
    assert.equal(res.statusCode, 204)
    assert.equal(res.body, '')
    res = await app.inject({ method: 'DELETE', url: '/v1/images/one' })
    assert.equal(res.statusCode, 404)
  })

  it('answers 404 in the error shape for unknown ids', async (t) => {
    const { app } = await buildTestApp(t)
    for (const url of ['/v1/images/nope', '/v1/images/nope/thumbnail']) {
      const res = await app.inject({ method: 'GET', url })
      assert.equal(res.statusCode, 404)
      const err = errorBody(res)
      assert.equal(err.code, 'NOT_FOUND')
      assert.equal(err.message, 'image "nope" not found')
    }
    const res = await app.inject({ method: 'DELETE', url: '/v1/images/nope' })
    assert.equal(res.statusCode, 404)
    errorBody(res)
  })
})
