/**
 * Bad input is refused with a clear 4xx in the one error shape, the server stays up, and
 * the index does not change. Awkward but valid images (16-bit, CMYK, animated, EXIF-rotated)
 * are accepted. Runs against the real server process.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { closeSync, constants, mkdirSync, openSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import sharp from 'sharp'
import { TIMEOUT } from '../helpers/timeouts.js'
import type { FormEntry } from '../helpers/build-app.js'
import { assertError, assertItemsFailed, checkAll, indexState, type Api, type Res } from './support/api.js'
import {
  animatedGif, animatedWebp, cmykJpeg, compressiblePng, distinctImage, hostileSvg, isBlue, isRed,
  noisePng, orientationSet, pixelAt, png16, pngDeclaring, truncatedJpeg
} from './support/images.js'
import { serviceEnv, spawnService, tempDirs, type Dirs, type SpawnedService } from './support/servers.js'

const MAX_UPLOAD_BYTES = 256 * 1024
const MAX_FILES = 4
const MAX_IMAGE_PIXELS = 4_000_000

const b64 = (b: Buffer): string => b.toString('base64')
const cosine = (a: number[], b: number[]): number => a.reduce((s, x, i) => s + x * b[i]!, 0)

describe('bad input', { timeout: TIMEOUT.server * 2 }, () => {
  let dirs: Dirs
  let svc: SpawnedService
  let api: Api
  const seeds = ['seed-0', 'seed-1', 'seed-2', 'seed-3', 'seed-4', 'seed-5']

  before(async () => {
    dirs = tempDirs('align-bad-input-')
    svc = await spawnService(serviceEnv(dirs, {
      MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES),
      MAX_FILES: String(MAX_FILES),
      MAX_IMAGE_PIXELS: String(MAX_IMAGE_PIXELS)
    }))
    api = svc.api
    const files = await Promise.all(seeds.map(async (id, i) => ({ id, bytes: await distinctImage(i) })))
    for (let i = 0; i < files.length; i += MAX_FILES) {
      const items = await api.uploadOk(files.slice(i, i + MAX_FILES))
      for (const it of items) assert.equal(it.status, 'indexed', JSON.stringify(it))
    }
  })

  after(async () => {
    await svc?.server.stop()
    dirs?.remove()
  })

  /** Runs `fn` and asserts that afterwards the server is healthy and the index looks exactly as before. */
  async function unchanged (fn: () => Promise<void>): Promise<void> {
    const before = await indexState(api, ['seed-0'])
    await fn()
    await api.assertHealthy()
    assert.deepEqual(await indexState(api, ['seed-0']), before, 'the index changed')
  }

  /** Sends `bytes` as an upload (per-item failure) and as a search image (whole-request error). */
  async function refusedImage (bytes: Buffer, status: number, code: string, what: string, type = 'application/octet-stream', uploadCode: string | string[] = code): Promise<void> {
    assertItemsFailed(await api.upload([{ bytes, id: `bad-${what}`, type, filename: `${what}.bin` }]), uploadCode, `upload ${what}`)
    if (bytes.length > 0) assertError(await api.search({ query: [{ image: b64(bytes) }] }), status, code, `search with ${what}`)
  }

  test('non-image bytes, a truncated JPEG and a zero-byte file are refused with 415', async () => {
    await unchanged(async () => {
      await refusedImage(Buffer.from('hello, I am plain text and not a picture\n'), 415, 'UNSUPPORTED_MEDIA_TYPE', 'text')
      await refusedImage(Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n'), 415, 'UNSUPPORTED_MEDIA_TYPE', 'pdf')
      await refusedImage(Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)), 415, 'UNSUPPORTED_MEDIA_TYPE', 'noise')
      await refusedImage(await truncatedJpeg(0.5), 415, 'UNSUPPORTED_MEDIA_TYPE', 'truncated-jpeg')
      await refusedImage(Buffer.alloc(0), 415, 'UNSUPPORTED_MEDIA_TYPE', 'empty', undefined, ['BAD_REQUEST', 'UNSUPPORTED_MEDIA_TYPE'])
      // the first bytes of a PNG and nothing else
      await refusedImage(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), 415, 'UNSUPPORTED_MEDIA_TYPE', 'png-signature-only')
      // an empty base64 image in a search is a schema error
      assertError(await api.search({ query: [{ image: '' }] }), 400, 'BAD_REQUEST', 'empty base64')
      assertError(await api.search({ query: [{ image: '!!!not base64!!!' }] }), 400, 'BAD_REQUEST', 'invalid base64')
    })
  })

  test('decompression bombs are refused with 413 from the header alone', async () => {
    await unchanged(async () => {
      const started = Date.now()
      // a real 16×16 PNG whose IHDR claims 50000×50000 (2.5 gigapixels)
      await refusedImage(await pngDeclaring(50_000, 50_000), 413, 'PAYLOAD_TOO_LARGE', 'ihdr-bomb')
      // a genuine 3000×3000 PNG of ~9 KB: 9 MP once decoded, over MAX_IMAGE_PIXELS
      const real = compressiblePng(3000)
      assert.ok(real.length < 20_000)
      await refusedImage(real, 413, 'PAYLOAD_TOO_LARGE', 'compressible-bomb')
      assert.ok(Date.now() - started < 30_000, 'refusing a bomb must not take long')
    })
  })

  test('16-bit PNG, CMYK JPEG, animated GIF and animated WebP are indexed (first frame)', async () => {
    const cases: Array<[string, Buffer]> = [
      ['png16', await png16()],
      ['cmyk', await cmykJpeg()],
      ['gif', await animatedGif()],
      ['webp', await animatedWebp()]
    ]
    const before = await api.counts()
    const items = await api.uploadOk(cases.map(([id, bytes]) => ({ id: `fmt-${id}`, bytes })))
    items.forEach((it, i) => assert.equal(it.status, 'indexed', `${cases[i]![0]}: ${JSON.stringify(it)}`))
    assert.equal((await api.counts()).images, before.images + cases.length)
    for (const [id] of cases) {
      const rec = await api.get(`/v1/images/fmt-${id}`)
      assert.equal(rec.status, 200)
      // all four are 32×32 per frame: an animation is read as its first frame, not a strip of frames
      assert.deepEqual([rec.json.width, rec.json.height], [32, 32], `${id}: ${rec.text}`)
      const thumb = await api.get(`/v1/images/fmt-${id}/thumbnail`)
      assert.equal(thumb.status, 200)
      assert.match(thumb.headers.get('content-type') ?? '', /^image\//)
      const meta = await sharp(thumb.body).metadata()
      assert.deepEqual([meta.width, meta.height], [32, 32], `${id}: the thumbnail is one frame`)
      await api.assertFindable(`fmt-${id}`)
    }
  })

  test('an EXIF-rotated JPEG is indexed upright', async () => {
    const { upright, rotated, sideways } = await orientationSet()
    const [it] = await api.uploadOk([{ id: 'exif-rotated', bytes: rotated, filename: 'rotated.jpg', type: 'image/jpeg' }])
    assert.equal(it?.status, 'indexed', JSON.stringify(it))
    // the thumbnail shows the picture as a viewer would: wide, red on the left, blue on the right
    const thumb = await api.get('/v1/images/exif-rotated/thumbnail')
    assert.equal(thumb.status, 200)
    const { width, height } = await sharp(thumb.body).metadata()
    assert.ok(width > height, `thumbnail is ${width}×${height}, expected landscape`)
    const left = (await pixelAt(thumb.body, Math.floor(width * 0.2), Math.floor(height / 2))).rgb
    const right = (await pixelAt(thumb.body, Math.floor(width * 0.8), Math.floor(height / 2))).rgb
    assert.ok(isRed(left), `left of the thumbnail is ${left.join(',')}, expected red`)
    assert.ok(isBlue(right), `right of the thumbnail is ${right.join(',')}, expected blue`)
    // and the embedding is the upright picture's, not the stored (sideways) pixels'
    const res = await api.post('/v1/embed', { images: [b64(rotated), b64(upright), b64(sideways)] })
    assert.equal(res.status, 200, res.text)
    const [r, u, s] = res.json.images as number[][]
    const ru = cosine(r!, u!)
    const rs = cosine(r!, s!)
    // not 1: the stored orientation changes the resampling grid by a pixel, and the random test model is sensitive to that
    assert.ok(ru > 0.5, `cos(rotated, upright) = ${ru}, cos(rotated, sideways) = ${rs}`)
    assert.ok(ru > rs, `cos(rotated, upright) = ${ru} should beat cos(rotated, sideways) = ${rs}`)
  })

  test('an SVG with external and file:// references is refused (415) and nothing is fetched or read', async () => {
    const hits: string[] = []
    const trap: Server = createServer((req, res) => { hits.push(req.url ?? ''); res.end('x') })
    await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve))
    const port = (trap.address() as AddressInfo).port
    // a reader opening this FIFO would block, and that is visible from here
    const fifo = path.join(dirs.root, 'secret.fifo')
    execFileSync('mkfifo', [fifo])
    try {
      const svgs = [
        hostileSvg(`http://127.0.0.1:${port}/pixel.png`, fifo),
        Buffer.concat([Buffer.from('\uFEFF  \n'), hostileSvg(`http://127.0.0.1:${port}/bom.png`, fifo)]),
        Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg"><image href="http://127.0.0.1:${port}/bare.png" width="9" height="9"/></svg>`),
        Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg"><image href="file://${fifo}" width="9" height="9"/></svg>`)
      ]
      await unchanged(async () => {
        for (const [i, svg] of svgs.entries()) await refusedImage(svg, 415, 'UNSUPPORTED_MEDIA_TYPE', `svg-${i}`, 'image/svg+xml')
        const cls = await api.post('/v1/classify', { image: b64(svgs[0]!), labels: ['cat', 'dog'] })
        assertError(cls, 415, 'UNSUPPORTED_MEDIA_TYPE', 'classify an SVG')
      })
      await new Promise((resolve) => setTimeout(resolve, 300))
      assert.deepEqual(hits, [], 'the SVG\'s external references were fetched')
      let opened = false
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK))
        opened = true
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, 'ENXIO')
      }
      assert.equal(opened, false, 'something opened the file:// reference for reading')
    } finally {
      await new Promise((resolve) => trap.close(resolve))
    }
  })

  test('a 100 000-character text is refused with 400', async () => {
    const long = 'a cat '.repeat(20_000).slice(0, 100_000)
    await unchanged(async () => {
      assertError(await api.search({ query: [{ text: long }] }), 400, 'BAD_REQUEST', 'search text')
      assertError(await api.post('/v1/texts', { texts: [{ text: long }] }), 400, 'BAD_REQUEST', '/v1/texts')
      assertError(await api.post('/v1/embed', { texts: [long] }), 400, 'BAD_REQUEST', '/v1/embed')
      // GET /v1/search?q= past the text limit but within the HTTP header limit
      assertError(await api.get(`/v1/search?q=${'x'.repeat(3000)}`), 400, 'BAD_REQUEST', 'GET search')
    })
    assert.equal((await api.counts()).texts, 0)
  })

  test('empty and ill-formed queries are refused with 400', async () => {
    const bodies: unknown[] = [
      {}, { query: [] }, { query: [{}] }, { query: [{ text: '' }] }, { query: [{ weight: 1 }] },
      { query: 'a cat' }, { query: [{ text: 'a', imageId: 'seed-0' }] }, { query: [{ text: 'a', bogus: 1 }] },
      { query: [{ text: 'a' }], target: 'videos' }, { query: [{ vector: [] }] }, { query: [{ vector: [1, 2, 3] }] },
      { query: [{ file: 'x' }] }, { query: [{ text: 'a' }], filter: { album: { $near: 1 } } }, { query: [{ text: 'a' }], filter: { album: { $in: [] } } }, [], 'null', '"a cat"', '{"query":'
    ]
    await unchanged(async () => {
      for (const json of bodies) assertError(await api.search(json), 400, 'BAD_REQUEST', `search ${JSON.stringify(json)}`)
      assertError(await api.get('/v1/search?q='), 400, 'BAD_REQUEST', 'GET ?q=')
      assertError(await api.get('/v1/search'), 400, 'BAD_REQUEST', 'GET without q')
      assertError(await api.req({ method: 'POST', path: '/v1/search', headers: { 'content-type': 'application/json' }, body: '' }), 400, 'BAD_REQUEST', 'empty body')
    })
  })

  test('NaN, Infinity and out-of-range weights and numbers are refused with 400', async () => {
    const dim = (await api.get('/v1/info')).json.model.dim as number
    const vec = (x: string): string => `[${[x, ...Array.from({ length: dim - 1 }, () => '0')].join(',')}]`
    // JSON cannot carry NaN or Infinity, but 1e999 parses to Infinity; strings must not be coerced
    const raw = [
      '{"query":[{"text":"a cat","weight":1e999}]}',
      '{"query":[{"text":"a cat","weight":-1e999}]}',
      '{"query":[{"text":"a cat","weight":"NaN"}]}',
      '{"query":[{"text":"a cat","weight":"Infinity"}]}',
      '{"query":[{"text":"a cat","weight":"1"}]}',
      '{"query":[{"text":"a cat","weight":null}]}',
      '{"query":[{"text":"a cat","weight":101}]}',
      '{"query":[{"text":"a cat"}],"minScore":1e999}',
      '{"query":[{"text":"a cat"}],"minScore":"NaN"}',
      `{"query":[{"vector":${vec('1e999')}}]}`,
      `{"query":[{"vector":${vec('-1e999')}}]}`,
      `{"query":[{"vector":${vec('"NaN"')}}]}`,
      `{"query":[{"vector":${vec('null')}}]}`
    ]
    await unchanged(async () => {
      for (const body of raw) assertError(await api.search(body), 400, 'BAD_REQUEST', body.slice(0, 80))
      // the same through a multipart search, whose JSON travels in the "query" field
      for (const body of raw.slice(0, 2)) {
        assertError(await api.req({ method: 'POST', path: '/v1/search', form: [['query', body]] }), 400, 'BAD_REQUEST', `multipart ${body}`)
      }
      // weights that cancel out leave no direction to search in: a 4xx, or finite scores, never a 5xx or NaN
      for (const query of [[{ text: 'a cat', weight: 0 }], [{ text: 'a cat', weight: 1 }, { text: 'a cat', weight: -1 }], [{ vector: Array.from({ length: dim }, () => 0) }]]) {
        const res = await api.search({ query })
        if (res.status === 200) {
          for (const h of res.json.results) assert.ok(Number.isFinite(h.score), `score ${String(h.score)} for ${JSON.stringify(query)}`)
        } else {
          assertError(res, (s) => s >= 400 && s < 500, undefined, `zero query ${JSON.stringify(query)}`)
        }
      }
    })
  })

  test('k of 0, -1, 10^9, 1.5 or "5" is refused with 400', async () => {
    await unchanged(async () => {
      for (const k of [0, -1, 1e9, 1.5, '5', null]) {
        assertError(await api.search({ query: [{ text: 'a cat' }], k }), 400, 'BAD_REQUEST', `k=${String(k)}`)
      }
      for (const k of ['0', '-1', '1000000000', 'abc', '1.5']) {
        assertError(await api.get(`/v1/search?q=cat&k=${k}`), 400, 'BAD_REQUEST', `GET k=${k}`)
      }
    })
  })

  test('unknown ids answer 404', async () => {
    await unchanged(async () => {
      assertError(await api.search({ query: [{ imageId: 'no-such-image' }] }), 404, 'NOT_FOUND', 'search imageId')
      assertError(await api.search({ query: [{ text: 'a cat' }, { imageId: 'no-such-image', weight: 0.5 }] }), 404, 'NOT_FOUND', 'mixed search')
      assertError(await api.get('/v1/images/no-such-image'), 404, 'NOT_FOUND')
      assertError(await api.get('/v1/images/no-such-image/thumbnail'), 404, 'NOT_FOUND')
      assertError(await api.del('/v1/images/no-such-image'), 404, 'NOT_FOUND')
      assertError(await api.del('/v1/texts/no-such-text'), 404, 'NOT_FOUND')
      assertError(await api.get('/v1/index-jobs/no-such-job'), 404, 'NOT_FOUND')
      assertError(await api.del('/v1/index-jobs/no-such-job'), 404, 'NOT_FOUND')
      assertError(await api.get('/v1/no-such-route'), 404, 'NOT_FOUND')
      // URLs the router itself refuses still answer in the error shape
      await checkAll([
        async () => { assertError(await api.get(`/v1/images/${'x'.repeat(600)}`), (s) => s === 404 || s === 400 || s === 414, undefined, 'overlong id') },
        async () => { assertError(await api.del(`/v1/images/${'x'.repeat(600)}`), (s) => s === 404 || s === 400 || s === 414, undefined, 'DELETE overlong id') },
        async () => { assertError(await api.get('/v1/images/%E0%A4%A'), (s) => s === 404 || s === 400, undefined, 'bad percent-encoding') }
      ])
    })
  })

  test('a wrong content type is refused with 415', async () => {
    await unchanged(async () => {
      const png = await distinctImage(500)
      assertError(await api.post('/v1/images', { image: b64(png) }), 415, 'UNSUPPORTED_MEDIA_TYPE', 'JSON to /v1/images')
      assertError(await api.req({ method: 'POST', path: '/v1/images', headers: { 'content-type': 'image/png' }, body: png }), 415, 'UNSUPPORTED_MEDIA_TYPE', 'raw PNG to /v1/images')
      assertError(await api.req({ method: 'POST', path: '/v1/search', headers: { 'content-type': 'text/plain' }, body: 'a cat' }), 415, 'UNSUPPORTED_MEDIA_TYPE', 'text/plain search')
      assertError(await api.req({ method: 'POST', path: '/v1/search', headers: { 'content-type': 'application/xml' }, body: '<q>cat</q>' }), 415, 'UNSUPPORTED_MEDIA_TYPE', 'XML search')
      assertError(await api.req({ method: 'POST', path: '/v1/texts', form: [['texts', 'a cat']] }), 415, 'UNSUPPORTED_MEDIA_TYPE', 'multipart to /v1/texts')
    })
  })

  test('an upload over MAX_UPLOAD_BYTES is refused with 413 and nothing of it is indexed', async () => {
    const big = await noisePng(400)
    assert.ok(big.length > MAX_UPLOAD_BYTES)
    await unchanged(async () => {
      const res = await api.upload([{ id: 'small-before-big', bytes: await distinctImage(501) }, { id: 'big', bytes: big }])
      assertError(res, 413, 'PAYLOAD_TOO_LARGE', 'oversized file part')
      assertError(await api.search({ query: [{ image: b64(big) }] }), 413, 'PAYLOAD_TOO_LARGE', 'oversized base64 image')
    })
    assertError(await api.get('/v1/images/small-before-big'), 404, 'NOT_FOUND')
  })

  test('more than MAX_FILES files in one request is refused with 413', async () => {
    const files = await Promise.all(Array.from({ length: MAX_FILES + 1 }, async (_, i) => ({ id: `many-${i}`, bytes: await distinctImage(600 + i) })))
    await unchanged(async () => {
      assertError(await api.upload(files), 413, 'PAYLOAD_TOO_LARGE', 'too many files')
    })
    assertError(await api.get('/v1/images/many-0'), 404, 'NOT_FOUND')
  })

  test('job sources that leave IMPORT_DIR (../, absolute paths, symlinks) are refused with 400', async () => {
    const outside = path.join(dirs.root, 'outside')
    mkdirSync(outside, { recursive: true })
    writeFileSync(path.join(outside, 'secret.png'), await distinctImage(700))
    writeFileSync(path.join(dirs.importDir, 'inside.png'), await distinctImage(701))
    symlinkSync(path.join(outside, 'secret.png'), path.join(dirs.importDir, 'link.png'))
    symlinkSync(outside, path.join(dirs.importDir, 'linkdir'))
    const bodies: unknown[] = [
      { items: [{ path: '../outside/secret.png' }] },
      { items: [{ path: 'inside.png' }, { path: '../outside/secret.png' }] },
      { items: [{ path: path.join(outside, 'secret.png') }] },
      { items: [{ path: '/etc/passwd' }] },
      { items: [{ path: 'sub/../../outside/secret.png' }] },
      { items: [{ path: 'link.png' }] },
      { items: [{ path: 'linkdir/secret.png' }] },
      { directory: '..' },
      { directory: '../outside' },
      { directory: '/' },
      { directory: outside },
      { directory: 'linkdir' },
      { items: [{ path: 'inside.png' }], directory: '.' },
      { items: [] }
    ]
    await unchanged(async () => {
      for (const body of bodies) assertError(await api.post('/v1/index-jobs', body), 400, 'BAD_REQUEST', JSON.stringify(body))
    })
  })

  test('a directory job skips a symlink that leaves IMPORT_DIR', async () => {
    const outside = path.join(dirs.root, 'outside2')
    const folder = path.join(dirs.importDir, 'mixed')
    mkdirSync(outside, { recursive: true })
    mkdirSync(folder, { recursive: true })
    const secret = await distinctImage(710)
    writeFileSync(path.join(outside, 'secret.png'), secret)
    writeFileSync(path.join(folder, 'ok.png'), await distinctImage(711))
    symlinkSync(path.join(outside, 'secret.png'), path.join(folder, 'escape.png'))
    symlinkSync(outside, path.join(folder, 'escape-dir'))
    const before = await api.counts()
    const res = await api.post('/v1/index-jobs', { directory: 'mixed' })
    assert.equal(res.status, 202, res.text)
    const job = await api.waitForJob(res.json.jobId, TIMEOUT.server)
    assert.equal(job.status, 'done', JSON.stringify(job))
    assert.equal((await api.counts()).images, before.images + 1, `only ok.png may be indexed: ${JSON.stringify(job)}`)
    // the secret's bytes were never stored: uploading them now indexes them as new
    const [it] = await api.uploadOk([{ id: 'secret-now', bytes: secret }])
    assert.equal(it?.status, 'indexed', `the file outside IMPORT_DIR had been indexed: ${JSON.stringify(it)}`)
  })

  test('duplicate ids in one batch fail per item and nothing else is lost', async () => {
    const [a, b, c, d] = await Promise.all([800, 801, 802, 803].map(async (i) => await distinctImage(i)))
    const before = await api.counts()
    const seed0 = (await api.get('/v1/images/seed-0')).json
    const items = await api.uploadOk([
      { id: 'dup-1', bytes: a! },
      { id: 'dup-1', bytes: b! },
      { id: 'dup-ok', bytes: c! },
      { id: 'seed-0', bytes: d! }
    ])
    const [first, second, third, fourth] = items
    assert.equal(first?.status, 'indexed', JSON.stringify(items))
    assert.equal(second?.status, 'failed', JSON.stringify(items))
    assert.ok(typeof second?.error === 'string' && second.error.length > 0)
    assert.equal(third?.status, 'indexed', JSON.stringify(items))
    assert.equal(fourth?.status, 'failed', `an id already stored with other bytes: ${JSON.stringify(items)}`)
    assert.equal((await api.counts()).images, before.images + 2)
    assert.deepEqual((await api.get('/v1/images/seed-0')).json, seed0, 'the stored image under a reused id is untouched')
    await api.assertFindable('dup-1')
    await api.assertFindable('dup-ok')
    await api.assertFindable('seed-0')
    // the same bytes twice: the second is a duplicate of the first, under the first's id
    const e = await distinctImage(804)
    const again = await api.uploadOk([{ id: 'same-a', bytes: e }, { id: 'same-b', bytes: e }])
    assert.deepEqual(again.map((x) => [x.id, x.status]), [['same-a', 'indexed'], ['same-a', 'duplicate']], JSON.stringify(again))
    assertError(await api.get('/v1/images/same-b'), 404, 'NOT_FOUND')
  })

  test('malformed multipart is refused with 400', async () => {
    const png = await distinctImage(900)
    const raw = (contentType: string, body: Buffer | string): Promise<Res> =>
      api.req({ method: 'POST', path: '/v1/images', headers: { 'content-type': contentType }, body: typeof body === 'string' ? Buffer.from(body) : body })
    const part = (headers: string, content: Buffer | string): Buffer => Buffer.concat([Buffer.from(`--XyZ\r\n${headers}\r\n\r\n`), Buffer.from(content), Buffer.from('\r\n')])
    const cases: Array<[string, () => Promise<Res>]> = [
      ['no closing boundary', async () => await raw('multipart/form-data; boundary=XyZ', part('Content-Disposition: form-data; name="file"; filename="a.png"', png))],
      ['no boundary parameter', async () => await raw('multipart/form-data', Buffer.concat([part('Content-Disposition: form-data; name="file"; filename="a.png"', png), Buffer.from('--XyZ--\r\n')]))],
      ['garbage body', async () => await raw('multipart/form-data; boundary=XyZ', Buffer.from('this is not a multipart body at all'))],
      ['empty body', async () => await raw('multipart/form-data; boundary=XyZ', Buffer.alloc(0))],
      ['only a closing boundary', async () => await raw('multipart/form-data; boundary=XyZ', '--XyZ--\r\n')],
      ['metadata that is not JSON', async () => await api.req({ method: 'POST', path: '/v1/images', form: formWith([['metadata', '{not json']], png) })],
      ['metadata that is not an object', async () => await api.req({ method: 'POST', path: '/v1/images', form: formWith([['metadata', '[1,2]']], png) })],
      ['an id with no file after it', async () => await api.req({ method: 'POST', path: '/v1/images', form: formWith([], png, [['id', 'dangling']]) })],
      ['an unknown field', async () => await api.req({ method: 'POST', path: '/v1/images', form: formWith([['colour', 'red']], png) })],
      ['a multipart search without a query field', async () => await api.req({ method: 'POST', path: '/v1/search', form: formWith([], png) })],
      ['a multipart search whose query is not JSON', async () => await api.req({ method: 'POST', path: '/v1/search', form: formWith([['query', '{"query": [']], png) })]
    ]
    await unchanged(async () => {
      await checkAll(cases.map(([what, send]) => async () => { assertError(await send(), 400, 'BAD_REQUEST', what) }))
    })
  })
})

function formWith (before: Array<[string, string]>, file: Buffer, afterFile: Array<[string, string]> = []): FormEntry[] {
  return [...before, ['file', { bytes: file, filename: 'a.png' }], ...afterFile]
}
