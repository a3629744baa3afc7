import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import pino from 'pino'
import { BadRequestError, ConflictError, NotFoundError } from '../../src/core/errors.js'
import { combineTerms } from '../../src/services/index.js'
import { openServices } from '../../src/main/wiring/open-services.js'
import type { ServicesConfig } from '../../src/main/wiring/services-config.js'
import type { Services } from '../../src/services/types.js'
import { createFakeEncoder, fakeLoadEncoder, imageVector, makeImage, normalize, textVector, type FakeEncoder, type FakeEncoderOptions } from '../helpers/fake-encoder.js'
import { TIMEOUT } from '../helpers/timeouts.js'

const base = mkdtempSync(path.join(tmpdir(), 'services-'))
after(() => { rmSync(base, { recursive: true, force: true }) })
const logger = pino({ level: 'silent' })
let n = 0

function freshDir (): string { return path.join(base, `d${++n}`) }

function config (dataDir: string, extra: Partial<ServicesConfig> = {}, enc: FakeEncoderOptions = {}): ServicesConfig {
  return {
    modelDir: 'unused-with-a-fake-encoder',
    dataDir,
    importDir: path.join(dataDir, 'no-imports'),
    executionProvider: 'cpu',
    encoderWorkers: 1,
    encoderThreads: 1,
    maxImagePixels: 100_000_000,
    hnsw: { M: 16, efConstruction: 100, efSearch: 64 },
    checkpointEvery: 1000,
    loadEncoder: fakeLoadEncoder(enc),
    ...extra
  }
}

const dot = (a: Float32Array, b: Float32Array): number => a.reduce((s, x, i) => s + x * b[i]!, 0)

/** opens services and adds `count` images with ids img-0..; returns the images' bytes */
async function withImages (dataDir: string, count: number, metadata?: (i: number) => Record<string, unknown>): Promise<{ services: Services, bytes: Buffer[] }> {
  const services = await openServices(config(dataDir), logger)
  const bytes = await Promise.all(Array.from({ length: count }, async (_, i) => await makeImage(i)))
  const res = await services.addImages(bytes.map((b, i) => ({ bytes: b, id: `img-${i}`, metadata: metadata?.(i) ?? { i } })))
  assert.ok(res.every((r) => r.status === 'indexed'), JSON.stringify(res))
  return { services, bytes }
}

describe('services (fake encoder)', { timeout: TIMEOUT.unit }, () => {
  it('combines query terms as normalize(Σ wᵢ · normalize(eᵢ)) and ranks by cosine', async () => {
    const { services, bytes } = await withImages(freshDir(), 40)
    const raw = Array.from({ length: 16 }, (_, i) => (i % 5) - 2)
    const query = [{ imageId: 'img-7', weight: 1 }, { text: 'dark skin tone', weight: -0.5 }, { vector: raw, weight: 2 }]
    const expected = normalize(new Float32Array(16).map((_, j) =>
      1 * imageVector(bytes[7]!)[j]! - 0.5 * textVector('dark skin tone')[j]! + 2 * normalize(Float32Array.from(raw))[j]!))
    assert.ok(Math.abs(dot(expected, combineTerms([imageVector(bytes[7]!), textVector('dark skin tone'), normalize(Float32Array.from(raw))], [1, -0.5, 2])) - 1) < 1e-6)

    // every image competes here, the one the query names included
    const hits = await services.search({ query, target: 'images', k: 10, includeQueryImages: true })
    const truth = bytes.map((b, i) => ({ id: `img-${i}`, score: dot(expected, imageVector(b)) })).sort((a, b) => b.score - a.score).slice(0, 10)
    assert.deepEqual(hits.map((h) => h.id), truth.map((t) => t.id))
    hits.forEach((h, i) => assert.ok(Math.abs(h.score - truth[i]!.score) < 1e-5, `${h.score} vs ${truth[i]!.score}`))

    // one term, weight 1: the image itself comes first with cosine 1 (when asked for)
    const self = await services.search({ query: [{ imageId: 'img-3' }], target: 'images', k: 1, includeQueryImages: true })
    assert.equal(self[0]!.id, 'img-3')
    assert.ok(Math.abs(self[0]!.score - 1) < 1e-5)
    // uploaded image bytes work like a stored id
    const byBytes = await services.search({ query: [{ image: bytes[5]! }], target: 'images', k: 1 })
    assert.equal(byBytes[0]!.id, 'img-5')
    await services.close()
  })

  it('leaves out the images that imageId terms name, k others still come back; includeQueryImages brings them back', async () => {
    const { services, bytes } = await withImages(freshDir(), 12)
    const ids = async (req: object): Promise<string[]> => (await services.search({ target: 'images', k: 5, ...req } as never)).map((h) => h.id)
    const all = await ids({ query: [{ imageId: 'img-3' }], k: 12 })
    assert.equal(all.length, 11)
    assert.ok(!all.includes('img-3'))
    // the rest keep their order: the nearest others, as a search by the same vector ranks them
    const byVector = await ids({ query: [{ vector: [...imageVector(bytes[3]!)] }], k: 12 })
    assert.deepEqual(all, byVector.filter((id) => id !== 'img-3'))

    // arithmetic: both named images are left out, and k results still come back
    const mixed = await ids({ query: [{ imageId: 'img-3' }, { imageId: 'img-5', weight: 0.5 }, { text: 'dark skin tone' }] })
    assert.equal(mixed.length, 5)
    assert.ok(!mixed.includes('img-3') && !mixed.includes('img-5'), mixed.join(','))
    const withThem = await ids({ query: [{ imageId: 'img-3' }, { imageId: 'img-5', weight: 0.5 }, { text: 'dark skin tone' }], k: 12, includeQueryImages: true })
    assert.ok(withThem.includes('img-3') && withThem.includes('img-5'))
    assert.equal((await ids({ query: [{ imageId: 'img-3' }], includeQueryImages: true }))[0], 'img-3')

    // only images are left out: a text that shares the id is another item
    await services.addTexts([{ id: 'img-3', text: 'a text with an image\'s id' }])
    assert.deepEqual(await ids({ query: [{ imageId: 'img-3' }], target: 'texts' }), ['img-3'])
    await assert.rejects(services.search({ query: [{ imageId: 'img-3' }], target: 'images', k: 1, includeQueryImages: 'yes' as never }), /includeQueryImages must be a boolean/)
    await services.close()
  })

  it('explains each hit with its cosine to every term', async () => {
    const { services, bytes } = await withImages(freshDir(), 12)
    const hits = await services.search({ query: [{ text: 'cat', weight: 2 }, { imageId: 'img-1', weight: 1 }], target: 'images', k: 5, explain: true })
    assert.equal(hits.length, 5)
    for (const h of hits) {
      const emb = imageVector(bytes[Number(h.id.slice(4))]!)
      assert.equal(h.terms?.length, 2)
      assert.ok(Math.abs(h.terms![0]! - dot(textVector('cat'), emb)) < 1e-6)
      assert.ok(Math.abs(h.terms![1]! - dot(imageVector(bytes[1]!), emb)) < 1e-6)
    }
    await services.close()
  })

  it('answers bad queries with the right error class, naming the field', async () => {
    const { services } = await withImages(freshDir(), 3)
    const fails = async (req: object, cls: new (m: string) => Error, status: number, field: RegExp): Promise<void> => {
      await assert.rejects(services.search({ target: 'images', k: 5, ...req } as never), (err: Error & { statusCode?: number }) => {
        assert.ok(err instanceof cls, `${err.name}: ${err.message}`)
        assert.equal(err.statusCode, status)
        assert.match(err.message, field)
        return true
      })
    }
    await fails({ query: [{ text: 'x' }, { imageId: 'nope' }] }, NotFoundError, 404, /query\[1\]\.imageId: no image with id "nope"/)
    await fails({ query: [{ text: 'x', weight: Number.NaN }] }, BadRequestError, 400, /query\[0\]\.weight must be a finite number/)
    await fails({ query: [{ text: 'x', weight: Number.POSITIVE_INFINITY }] }, BadRequestError, 400, /query\[0\]\.weight/)
    await fails({ query: [{ vector: [1, 2, 3] }] }, BadRequestError, 400, /query\[0\]\.vector must be an array of 16 numbers/)
    await fails({ query: [{ vector: [...new Array(15).fill(0), Number.NaN] }] }, BadRequestError, 400, /query\[0\]\.vector\[15\]/)
    await fails({ query: [{ vector: new Array(16).fill(0) }] }, BadRequestError, 400, /query\[0\]\.vector has \(almost\) zero length/)
    await fails({ query: [{ text: 'a', weight: 1 }, { text: 'a', weight: -1 }] }, BadRequestError, 400, /cancel out/)
    // one negative term (or only negative and zero ones) would rank "anti-results": refused, saying why
    await fails({ query: [{ text: 'a', weight: -1 }] }, BadRequestError, 400, /every term's weight is 0 or negative.*give at least one term a positive weight/)
    await fails({ query: [{ text: 'a', weight: 0 }, { imageId: 'img-0', weight: -0.5 }] }, BadRequestError, 400, /every term's weight is 0 or negative/)
    await fails({ query: [{ text: 'a', imageId: 'img-0' }] }, BadRequestError, 400, /query\[0\] needs exactly one of/)
    await fails({ query: [] }, BadRequestError, 400, /query must be a non-empty array/)
    await fails({ query: [{ text: 'a' }], k: 0 }, BadRequestError, 400, /^k must be an integer from 1 to 1000/)
    await fails({ query: [{ text: 'a' }], k: 1001 }, BadRequestError, 400, /^k must/)
    await fails({ query: [{ text: 'a' }], filter: { a: [1] } }, BadRequestError, 400, /filter\.a/)
    await fails({ query: [{ text: 'a' }], target: 'videos' }, BadRequestError, 400, /target/)
    await services.close()
  })

  it('filters on metadata (exact match) and drops hits below minScore', async () => {
    const { services, bytes } = await withImages(freshDir(), 60, (i) => ({ set: i % 4 === 0 ? 'a' : 'b', odd: i % 2 === 1 }))
    const hits = await services.search({ query: [{ text: 'anything' }], target: 'images', k: 100, filter: { set: 'a' } })
    assert.equal(hits.length, 15)
    assert.ok(hits.every((h) => h.metadata.set === 'a'))
    const two = await services.search({ query: [{ text: 'anything' }], target: 'images', k: 100, filter: { set: 'b', odd: false } })
    assert.equal(two.length, 15)
    assert.ok(two.every((h) => h.metadata.set === 'b' && h.metadata.odd === false))
    const none = await services.search({ query: [{ text: 'anything' }], target: 'images', k: 5, filter: { set: 'c' } })
    assert.deepEqual(none, [])

    const q = textVector('anything')
    const scores = bytes.map((b) => dot(q, imageVector(b))).sort((a, b) => b - a)
    const min = scores[9]! - 1e-6
    const above = await services.search({ query: [{ text: 'anything' }], target: 'images', k: 50, minScore: min })
    assert.equal(above.length, 10)
    assert.ok(above.every((h) => h.score >= min))
    await services.close()
  })

  it('ingests per item: duplicates, repeated ids, taken ids and undecodable files fail alone', async () => {
    const { services, bytes } = await withImages(freshDir(), 2)
    const fresh = await makeImage(100)
    const other = await makeImage(101)
    const res = await services.addImages([
      { bytes: bytes[0]! }, // stored already
      { bytes: fresh, id: 'new-1' },
      { bytes: fresh }, // same content twice in one batch
      { bytes: other, id: 'new-1' }, // id repeated in the batch
      { bytes: other, id: 'img-1' }, // id of another image
      { bytes: Buffer.from('not an image'), id: 'junk' },
      { bytes: other, id: 'bad id!' },
      { bytes: other, metadata: { k: 'v' } }
    ])
    assert.deepEqual(res.map((r) => [r.status, r.code ?? '']), [
      ['duplicate', ''], ['indexed', ''], ['duplicate', ''], ['failed', 'BAD_REQUEST'],
      ['failed', 'CONFLICT'], ['failed', 'UNSUPPORTED_MEDIA_TYPE'], ['failed', 'BAD_REQUEST'], ['indexed', '']
    ])
    assert.equal(res[0]!.id, 'img-0')
    assert.equal(res[2]!.id, 'new-1')
    assert.match(res[3]!.error!, /items\[3\]\.id "new-1" repeats items\[1\]\.id/)
    assert.match(res[4]!.error!, /already used by another image/)
    assert.equal((await services.stats()).images, 4)
    const rec = (await services.getImage(res[7]!.id))!
    assert.deepEqual(rec.metadata, { k: 'v' })
    assert.deepEqual([rec.width, rec.height], [8, 9])
    const thumb = (await services.getThumbnail('new-1'))!
    assert.equal(thumb.contentType, 'image/webp')
    assert.equal(thumb.bytes.subarray(8, 12).toString(), 'WEBP')
    assert.equal(await services.getThumbnail('nope'), undefined)
    await services.close()
  })

  it('never returns a deleted image, and keeps images and deletions across a restart', async () => {
    const dataDir = freshDir()
    const { services, bytes } = await withImages(dataDir, 30)
    assert.equal(await services.deleteImage('img-4'), true)
    assert.equal(await services.deleteImage('img-4'), false)
    const hits = await services.search({ query: [{ image: bytes[4]! }], target: 'images', k: 30 })
    assert.equal(hits.length, 29)
    assert.ok(hits.every((h) => h.id !== 'img-4'))
    await assert.rejects(services.search({ query: [{ imageId: 'img-4' }], target: 'images', k: 1 }), NotFoundError)
    assert.equal(await services.deleteImage('img-9'), true)
    // a new image takes a freed label
    assert.equal((await services.addImages([{ bytes: await makeImage(500), id: 'late' }]))[0]!.status, 'indexed')
    await services.close()
    assert.equal(services.ready(), false)
    await assert.rejects(services.search({ query: [{ text: 'x' }], target: 'images', k: 1 }), /shutting down/)

    const again = await openServices(config(dataDir), logger)
    assert.equal((await again.stats()).images, 29)
    assert.equal(await again.getImage('img-4'), undefined)
    assert.equal(await again.getImage('img-9'), undefined)
    assert.deepEqual((await again.getImage('img-5'))?.metadata, { i: 5 })
    const all = await again.search({ query: [{ image: bytes[9]! }], target: 'images', k: 100 })
    assert.equal(all.length, 29)
    assert.ok(all.every((h) => h.id !== 'img-4' && h.id !== 'img-9'))
    assert.equal((await again.search({ query: [{ imageId: 'late' }], target: 'images', k: 1, includeQueryImages: true }))[0]!.id, 'late')
    await again.close()
  })

  it('a deleted image leaves the index too: a search still returns k results after the nearest ones are deleted', async () => {
    const { services, bytes } = await withImages(freshDir(), 30)
    const nearest = (await services.search({ query: [{ image: bytes[0]! }], target: 'images', k: 3 })).map((h) => h.id)
    // await: deletes become async with the storage ports (issue 11); the check stays the same for every backend
    for (const id of nearest) assert.equal(await services.deleteImage(id), true)
    const hits = await services.search({ query: [{ image: bytes[0]! }], target: 'images', k: 5 })
    assert.equal(hits.length, 5, `k=5 after deleting the 3 nearest returned ${hits.length}: the index still holds deleted vectors`)
    assert.ok(hits.every((h) => !nearest.includes(h.id)))
    await services.close()
  })

  it('keeps a text pool for image → text search', async () => {
    const { services, bytes } = await withImages(freshDir(), 3)
    const added = await services.addTexts([{ text: 'a cat', id: 't-cat' }, { text: 'a dog', metadata: { kind: 'animal' } }, { text: 'a cat' }])
    assert.deepEqual(added.map((a) => a.status), ['indexed', 'indexed', 'duplicate'])
    assert.equal(added[2]!.id, 't-cat')
    assert.deepEqual((await services.addTexts([{ text: 'a dog' }]))[0]!.status, 'duplicate')
    await assert.rejects(services.addTexts([{ text: 'a bird', id: 't-cat' }]), ConflictError)
    await assert.rejects(services.addTexts([{ text: '  ' }]), /items\[0\]\.text/)
    const hits = await services.search({ query: [{ image: bytes[0]! }], target: 'texts', k: 5 })
    assert.equal(hits.length, 2)
    const cat = hits.find((h) => h.id === 't-cat')!
    assert.equal(cat.text, 'a cat')
    assert.ok(Math.abs(cat.score - dot(imageVector(bytes[0]!), textVector('a cat'))) < 1e-5)
    assert.equal(await services.deleteText('t-cat'), true)
    assert.deepEqual((await services.search({ query: [{ image: bytes[0]! }], target: 'texts', k: 5 })).map((h) => h.text), ['a dog'])
    assert.equal((await services.stats()).texts, 1)
    await services.close()
  })

  it('classifies with softmax(cosine / temperature) over the prompt template', async () => {
    const dataDir = freshDir()
    const services = await openServices(config(dataDir), logger)
    const img = await makeImage(42)
    const labels = ['cat', 'dog', 'house']
    const out = await services.classify(img, labels)
    const scores = labels.map((l) => dot(imageVector(img), textVector(`an icon of ${l}`)))
    const exps = scores.map((s) => Math.exp(s / 0.05))
    const z = exps.reduce((a, b) => a + b, 0)
    out.forEach((o, i) => {
      assert.equal(o.label, labels[i])
      assert.ok(Math.abs(o.score - scores[i]!) < 1e-6)
      assert.ok(Math.abs(o.probability - exps[i]! / z) < 1e-5)
    })
    const custom = await services.classify(img, ['cat', 'dog'], 'a photo of a {}')
    assert.ok(Math.abs(custom[0]!.score - dot(imageVector(img), textVector('a photo of a cat'))) < 1e-6)
    await assert.rejects(services.classify(img, ['x', 'y'], 'no placeholder'), /template/)
    await assert.rejects(services.classify(img, []), /labels/)
    // one label would always get probability 1
    await assert.rejects(services.classify(img, ['cat']), /labels needs at least 2 entries/)
    await services.close()
  })

  it('refuses DATA_DIR built by another model, closing what it opened', async () => {
    const dataDir = freshDir()
    await (await openServices(config(dataDir), logger)).close()
    let enc: FakeEncoder | undefined
    const load = async (): Promise<FakeEncoder> => { enc = createFakeEncoder({ dim: 32 }); return enc }
    await assert.rejects(openServices(config(dataDir, { loadEncoder: load }), logger), (err: Error) => {
      assert.ok(err instanceof ConflictError)
      assert.match(err.message, /built with model fake-encoder-16 \(dim 16\); this server runs fake-encoder-32 \(dim 32\).*npm run index/)
      return true
    })
    assert.equal(enc?.closed, true)
  })

  it('queues the demo pool on the first start only, with manifest labels as metadata and text pool', async () => {
    const dataDir = freshDir()
    const pool = path.join(base, `pool${n}`)
    mkdirSync(path.join(pool, 'icons'), { recursive: true })
    for (let i = 0; i < 4; i++) writeFileSync(path.join(pool, 'icons', `i${i}.png`), await makeImage(1000 + i))
    writeFileSync(path.join(pool, 'manifest.jsonl'), [
      JSON.stringify({ file: 'icons/i0.png', label: 'cat', set: 'animals', license: 'CC0' }),
      JSON.stringify({ file: 'icons/i1.png', label: 'dog', set: 'animals', license: 'CC0' }),
      'not json',
      JSON.stringify({ file: 'icons/i2.png', label: 'cat', set: 'more', license: 'CC0' })
    ].join('\n'))
    const services = await openServices(config(dataDir, { demoPoolDir: pool }), logger)
    const deadline = Date.now() + 10_000
    while (((await services.stats()).images < 4 || (await services.stats()).texts < 2) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    assert.equal((await services.stats()).images, 4)
    const cats = await services.search({ query: [{ text: 'x' }], target: 'images', k: 10, filter: { label: 'cat' } })
    assert.deepEqual(cats.map((h) => h.metadata.set).sort(), ['animals', 'more'])
    // the text pool holds the labels; their vectors are the model's prompt template filled with them
    const texts = await services.search({ query: [{ text: 'an icon of dog' }], target: 'texts', k: 10 })
    assert.deepEqual(texts.map((t) => t.text).sort(), ['cat', 'dog'])
    assert.equal(texts[0]!.text, 'dog')
    assert.ok(texts[0]!.score > 0.9999, `"dog" was not encoded as "an icon of dog" (score ${texts[0]!.score})`)
    const bare = await services.search({ query: [{ text: 'dog' }], target: 'texts', k: 10 })
    assert.ok(bare.every((t) => t.score < 0.9999), 'a label was encoded without the template')
    for (const h of await services.search({ query: [{ text: 'x' }], target: 'images', k: 10 })) await services.deleteImage(h.id)
    await services.close()

    const again = await openServices(config(dataDir, { demoPoolDir: pool }), logger)
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.equal((await again.stats()).images, 0, 'not queued a second time')
    await again.close()
  })
})
