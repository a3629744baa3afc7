/**
 * Property-based fuzzing with fast-check, bounded: arbitrary and almost-valid search bodies
 * never produce a 5xx (4xx answers are in the one error shape, 200s have finite scores and at
 * most k results), and arbitrary or mutated image bytes never make the decoder throw anything
 * but a 413 or 415, nor the upload route answer a 5xx. The app is built in-process.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import fc from 'fast-check'
import { loadModelFolder, prepareImage, type PreprocessorConfig } from '../../src/ml/index.js'
import { TIMEOUT } from '../helpers/timeouts.js'
import { multipart, type FormEntry } from '../helpers/build-app.js'
import { assertError, imageForm, type Api } from './support/api.js'
import { animatedGif, cmykJpeg, distinctImage, orientationSet, png16 } from './support/images.js'
import { MODEL_DIR, buildService, serviceEnv, tempDirs, type Dirs, type InProcessService } from './support/servers.js'
import sharp from 'sharp'

const SEARCH_RUNS = Number(process.env.RELIABILITY_FUZZ_SEARCH_RUNS ?? 200)
const DECODER_RUNS = Number(process.env.RELIABILITY_FUZZ_DECODER_RUNS ?? 300)
const UPLOAD_RUNS = Number(process.env.RELIABILITY_FUZZ_UPLOAD_RUNS ?? 40)
const MAX_IMAGE_PIXELS = 4_000_000
/** fast-check's seed, printed on failure; set RELIABILITY_FUZZ_SEED to replay */
const SEED = process.env.RELIABILITY_FUZZ_SEED === undefined ? undefined : Number(process.env.RELIABILITY_FUZZ_SEED)
const params = (numRuns: number): fc.Parameters<unknown> => ({ numRuns, ...(SEED === undefined ? {} : { seed: SEED }), endOnFailure: true })

/** Image bytes to mutate: every format the service accepts. */
async function samples (): Promise<Buffer[]> {
  const { rotated } = await orientationSet()
  return [
    await distinctImage(1, 24),
    await sharp(await distinctImage(2, 24)).jpeg({ quality: 80 }).toBuffer(),
    await sharp(await distinctImage(3, 24)).webp().toBuffer(),
    await sharp(await distinctImage(4, 24)).tiff().toBuffer(),
    await animatedGif(),
    await png16(),
    await cmykJpeg(),
    rotated
  ]
}

/** Arbitrary mutations of `base`: bytes flipped, a chunk spliced in, the end cut off. */
function mutationsOf (bases: Buffer[], maxFlips = 12): fc.Arbitrary<Buffer> {
  return fc.record({
    base: fc.constantFrom(...bases),
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: maxFlips }),
    cut: fc.option(fc.double({ min: 0, max: 1, noNaN: true })),
    splice: fc.option(fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 64 })))
  }).map(({ base, flips, cut, splice }) => {
    let b = Buffer.from(base)
    for (const [at, v] of flips) b[at % b.length] = v
    if (splice !== null) b = Buffer.concat([b.subarray(0, splice[0] % b.length), Buffer.from(splice[1]), b.subarray(splice[0] % b.length)])
    if (cut !== null) b = b.subarray(0, Math.floor(b.length * cut))
    return b
  })
}

/** Arbitrary bytes: random, or a sample with bytes flipped, cut, spliced or its PNG size fields rewritten. */
function imageBytes (bases: Buffer[]): fc.Arbitrary<Buffer> {
  const random = fc.uint8Array({ maxLength: 4096 }).map((a) => Buffer.from(a))
  const mutated = mutationsOf(bases)
  const resized = fc.record({ w: fc.nat(), h: fc.nat() }).map(({ w, h }) => {
    const b = Buffer.from(bases[0]!)
    b.writeUInt32BE(w >>> 0, 16)
    b.writeUInt32BE(h >>> 0, 20)
    return b
  })
  return fc.oneof({ arbitrary: random, weight: 2 }, { arbitrary: mutated, weight: 6 }, { arbitrary: resized, weight: 1 })
}

describe('fuzz: the image decoder', { timeout: TIMEOUT.server }, () => {
  let pre: PreprocessorConfig
  let bases: Buffer[]

  before(async () => {
    pre = (await loadModelFolder(MODEL_DIR)).preprocessor
    bases = await samples()
  })

  test(`prepareImage resolves or throws 413/415, nothing else (${DECODER_RUNS} runs)`, async () => {
    await fc.assert(fc.asyncProperty(imageBytes(bases), async (bytes) => {
      try {
        const out = await prepareImage(bytes, pre, { maxImagePixels: MAX_IMAGE_PIXELS })
        assert.equal(out.pixels.length, 3 * pre.inputHeight * pre.inputWidth)
        for (const x of out.pixels) assert.ok(Number.isFinite(x))
      } catch (err) {
        const status = (err as { statusCode?: number }).statusCode
        assert.ok(status === 413 || status === 415, `unexpected error: ${(err as Error).stack ?? String(err)}`)
      }
    }), params(DECODER_RUNS))
  })
})

describe('fuzz: the API', { timeout: TIMEOUT.server * 2 }, () => {
  let dirs: Dirs
  let svc: InProcessService
  let api: Api
  let dim = 0
  let bases: Buffer[]

  before(async () => {
    dirs = tempDirs('align-fuzz-')
    svc = await buildService(serviceEnv(dirs, { MAX_IMAGE_PIXELS: String(MAX_IMAGE_PIXELS), MAX_UPLOAD_BYTES: '1MB' }))
    api = svc.api
    dim = (await api.get('/v1/info')).json.model.dim as number
    bases = await samples()
    await api.uploadOk(await Promise.all(['a', 'b', 'c', 'd', 'e', 'f'].map(async (id, i) => ({ id, bytes: await distinctImage(100 + i), metadata: { album: i % 2 === 0 ? 'even' : 'odd', n: i } }))))
    assert.equal((await api.post('/v1/texts', { texts: [{ id: 't1', text: 'a red circle' }, { id: 't2', text: 'blue stripes' }] })).status, 200)
  })
  after(async () => {
    await svc?.close()
    dirs?.remove()
  })

  /** An answer is a success with sane results, or a 4xx in the error shape; never a 5xx. */
  function assertSane (res: Awaited<ReturnType<Api['search']>>, what: string, k?: unknown): void {
    assert.ok(res.status < 500, `${what} → ${res.status} ${res.text.slice(0, 300)}`)
    if (res.status >= 400) {
      assertError(res, res.status, undefined, what)
      return
    }
    assert.equal(res.status, 200, what)
    const results = res.json.results as Array<{ id: string, score: number }>
    assert.ok(Array.isArray(results), what)
    if (typeof k === 'number') assert.ok(results.length <= k, `${what}: ${results.length} results for k=${k}`)
    for (const r of results) assert.ok(Number.isFinite(r.score) && typeof r.id === 'string', `${what}: ${JSON.stringify(r)}`)
  }

  test(`search bodies never produce a 5xx (${SEARCH_RUNS} runs)`, async () => {
    const num = fc.oneof(
      fc.double(), fc.integer(),
      fc.constantFrom(0, -0, 1, -1, 0.5, 100, 101, -100, -101, 1e9, -1e9, 1e308, 5e-324, Number.MAX_SAFE_INTEGER)
    )
    const junk = fc.oneof(fc.string({ maxLength: 20 }), num, fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.object({ maxDepth: 1 }))
    const vector = fc.oneof(
      fc.array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: dim, maxLength: dim }),
      fc.array(fc.oneof(fc.double(), junk), { maxLength: dim + 2 })
    )
    const image = fc.oneof(
      fc.constantFrom(...bases).map((b) => b.toString('base64')),
      fc.constantFrom(...bases).map((b) => `data:image/png;base64,${b.toString('base64')}`),
      fc.base64String({ maxLength: 200 }),
      fc.string({ maxLength: 50 })
    )
    const term = fc.record({
      text: fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 40 }), junk),
      imageId: fc.oneof(fc.constantFrom('a', 'b', 'c', 'nope', '', '../a', 'a\u0000b'), junk),
      image,
      vector,
      file: fc.oneof(fc.string({ maxLength: 10 }), junk),
      weight: fc.oneof(num, junk),
      extra: junk
    }, { requiredKeys: [] }).chain((t) => fc.constantFrom(
      // mostly exactly one kind, as a real client sends
      ...(['text', 'imageId', 'image', 'vector'] as const).filter((kind) => kind in t).map((kind) => ({ [kind]: (t as Record<string, unknown>)[kind], ...('weight' in t ? { weight: t.weight } : {}) })),
      t
    ))
    const body = fc.record({
      query: fc.oneof({ arbitrary: fc.array(term, { maxLength: 18 }), weight: 8 }, { arbitrary: junk, weight: 1 }),
      target: fc.oneof(fc.constantFrom('images', 'texts'), junk),
      k: fc.oneof(fc.integer({ min: -3, max: 1100 }), junk),
      minScore: fc.oneof(fc.double({ min: -1.5, max: 1.5, noNaN: true }), junk),
      filter: fc.oneof(fc.dictionary(fc.constantFrom('album', 'n', 'x', ''), fc.oneof(fc.constantFrom('even', 'odd'), fc.integer({ min: 0, max: 6 }), fc.boolean(), junk), { maxKeys: 4 }), junk),
      explain: fc.oneof(fc.boolean(), junk),
      bogus: junk
    }, { requiredKeys: ['query'] })
    const raw = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 100 }),
      fc.constantFrom('{"query":[{"text":"a","weight":1e999}]}', '{"query":[{"text":"a"}],"k":1e999}', '{"query":[{"text":"a"}],"k":-0}', '{"query":[{"text":"a"}]', '{"query":[{"text":"a"}]}garbage', '\uFEFF{"query":[{"text":"a"}]}', '{"__proto__":{"k":5},"query":[{"text":"a"}]}', '{"constructor":{"prototype":{"polluted":1}},"query":[{"text":"a"}]}')
    )
    const request = fc.oneof({ arbitrary: body.map((b) => JSON.stringify(b)), weight: 4 }, { arbitrary: raw, weight: 1 })

    await fc.assert(fc.asyncProperty(request, async (json) => {
      let k: unknown
      try { k = (JSON.parse(json) as { k?: unknown })?.k ?? 10 } catch { k = undefined }
      assertSane(await api.search(json), `POST /v1/search ${json.slice(0, 300)}`, k)
    }), params(SEARCH_RUNS))
    // the same through GET and multipart, fewer runs
    await fc.assert(fc.asyncProperty(fc.string({ maxLength: 60 }), fc.oneof(fc.string({ maxLength: 6 }), fc.integer().map(String)), async (q, k) => {
      assertSane(await api.get(`/v1/search?q=${encodeURIComponent(q)}&k=${encodeURIComponent(k)}`), `GET q=${q} k=${k}`)
    }), params(Math.ceil(SEARCH_RUNS / 4)))
    await fc.assert(fc.asyncProperty(request, imageBytes(bases), async (json, bytes) => {
      const form: FormEntry[] = [['query', json], ['img', { bytes, filename: 'img.bin', type: 'application/octet-stream' }]]
      assertSane(await api.req({ method: 'POST', path: '/v1/search', form }), `multipart search ${json.slice(0, 200)}`)
    }), params(Math.ceil(SEARCH_RUNS / 4)))
    assert.equal(({} as Record<string, unknown>).polluted, undefined, 'prototype pollution')
    await api.assertHealthy()
  })

  test(`uploads of arbitrary bytes never produce a 5xx (${UPLOAD_RUNS} runs)`, async () => {
    const before = await api.counts()
    let indexed = 0
    await fc.assert(fc.asyncProperty(fc.array(imageBytes(bases), { minLength: 1, maxLength: 4 }), async (files) => {
      const res = await api.upload(files.map((bytes) => ({ bytes })))
      // 200, or when every file failed, the error of their reason with the items
      if (res.status !== 200) assertError(res, (s) => [400, 413, 415].includes(s), undefined, 'POST /v1/images, every file failed')
      assert.ok(Array.isArray(res.json.items), `POST /v1/images → ${res.status} ${res.text.slice(0, 300)}`)
      for (const it of res.json.items as Array<{ status: string, code?: string }>) {
        if (it.status === 'indexed') indexed++
        if (it.status === 'failed') assert.ok(['UNSUPPORTED_MEDIA_TYPE', 'PAYLOAD_TOO_LARGE', 'BAD_REQUEST'].includes(it.code ?? ''), JSON.stringify(it))
      }
      const b64 = files[0]!.toString('base64')
      if (b64.length > 0) {
        const s = await api.search({ query: [{ image: b64 }] })
        assertSane(s, 'search with the same bytes')
        if (s.status >= 400) assert.ok([400, 413, 415].includes(s.status), `search with fuzzed image → ${s.status} ${s.text}`)
      }
    }), params(UPLOAD_RUNS))
    const after = await api.counts()
    assert.equal(after.images, before.images + indexed, 'every image reported indexed is stored, and nothing else')
    await api.assertHealthy()
  })

  test(`mangled multipart bodies never produce a 5xx (${UPLOAD_RUNS} runs per route)`, async () => {
    const forms = await Promise.all([
      multipart(imageForm([{ id: 'm1', metadata: { a: 1 }, bytes: bases[0]! }, { bytes: bases[1]! }])),
      multipart([['query', '{"query":[{"file":"img"}]}'], ['img', { bytes: bases[0]!, filename: 'img.png' }]])
    ]).then((fs) => fs.map((f) => ({ body: f.payload, contentType: f.headers['content-type'] })))
    const boundaryOf = (ct: string): string => /boundary=(.+)$/.exec(ct)?.[1] ?? ''
    const contentType = fc.oneof(
      fc.constantFrom(...forms.map((f) => f.contentType)),
      fc.constantFrom('multipart/form-data', 'multipart/form-data; boundary=', 'multipart/form-data; boundary="unterminated', 'multipart/mixed; boundary=x', `multipart/form-data; boundary=${'b'.repeat(300)}`),
      fc.string({ maxLength: 20 }).map((b) => `multipart/form-data; boundary=${b}`)
    )
    const body = fc.oneof(
      { arbitrary: mutationsOf(forms.map((f) => f.body), 6), weight: 4 },
      { arbitrary: fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a)), weight: 1 },
      { arbitrary: fc.constantFrom(...forms.map((f) => Buffer.from(`--${boundaryOf(f.contentType)}\r\n`))), weight: 1 }
    )
    const problems: string[] = []
    for (const path of ['/v1/images', '/v1/search', '/v1/index-jobs']) {
      await fc.assert(fc.asyncProperty(contentType, body, async (ct, payload) => {
        const res = await api.req({ method: 'POST', path, headers: { 'content-type': ct }, body: payload })
        if (res.status >= 500) problems.push(`${path} ${ct.slice(0, 60)} → ${res.status}`)
        else if (res.status >= 400) assertError(res, res.status, undefined, `${path} ${ct.slice(0, 60)}`)
      }), params(UPLOAD_RUNS))
    }
    // one line per distinct failure, so the report names every kind
    assert.deepEqual([...new Set(problems)].slice(0, 20), [], `${problems.length} of ${3 * UPLOAD_RUNS} mangled multipart requests answered a 5xx`)
    await api.assertHealthy()
  })
})
