/**
 * The services with the real default model (models/align-mini): the same promises as the fake-encoder
 * tests, end to end through ONNX. Checks what holds for any trained state of the model (stored
 * embedding = encodeImages, explain = cosine, restart), not ranking quality or parity with
 * reference.json (test/ml covers those).
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import pino from 'pino'
import { TIMEOUT } from '../helpers/timeouts.js'
import type { ServicesConfig } from '../../src/main/wiring/services-config.js'
import type { Services } from '../../src/services/types.js'

const MODEL_DIR = 'models/align-mini'
const MODEL_ID = (JSON.parse(readFileSync(path.join(MODEL_DIR, 'config.json'), 'utf8')) as { model_id: string }).model_id
const skip = !existsSync('src/ml/index.ts')
  ? 'src/ml/index.ts (loadEncoder) does not exist yet'
  : !existsSync(path.join(MODEL_DIR, 'vision.onnx')) ? `${MODEL_DIR} has no vision.onnx` : undefined

const dot = (a: Float32Array, b: Float32Array): number => a.reduce((s, x, i) => s + x * b[i]!, 0)
const unit = (v: Float32Array): Float32Array => { const n = Math.sqrt(dot(v, v)); return v.map((x) => x / n) }

describe('services with the real align-mini encoder', { timeout: TIMEOUT.model, skip }, () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'services-real-'))
  const logger = pino({ level: 'silent' })
  const config: ServicesConfig = {
    modelDir: MODEL_DIR,
    dataDir,
    importDir: dataDir,
    executionProvider: 'cpu',
    encoderWorkers: 1,
    encoderThreads: 1,
    maxImagePixels: 100_000_000,
    hnsw: { M: 16, efConstruction: 200, efSearch: 64 },
    checkpointEvery: 1000
  }
  let services: Services
  let refs: Array<{ name: string, png: Buffer }>
  let openServices: (c: ServicesConfig, l: typeof logger) => Promise<Services>

  before(async () => {
    ({ openServices } = await import('../../src/main/wiring/open-services.js'))
    const { loadReference } = await import('../../src/ml/index.js')
    refs = (await loadReference(MODEL_DIR)).images
    services = await openServices(config, logger)
  })
  after(async () => {
    await services?.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('indexes real images and finds each by its own embedding', async () => {
    assert.equal(services.model.modelId, MODEL_ID)
    const res = await services.addImages(refs.map((r, i) => ({ bytes: r.png, id: `ref-${i}`, metadata: { name: r.name } })))
    assert.deepEqual(res.map((r) => r.status), refs.map(() => 'indexed'))
    assert.equal((await services.stats()).images, refs.length)
    assert.equal((await services.addImages([{ bytes: refs[0]!.png }]))[0]!.status, 'duplicate')
    const embedded = await services.embedImages(refs.map((r) => r.png))
    for (const [i, v] of embedded.entries()) {
      // its own stored embedding scores 1 (the placeholder model may tie every image, so no rank check)
      const hits = await services.search({ query: [{ vector: Array.from(v) }], target: 'images', k: refs.length })
      const self = hits.find((h) => h.id === `ref-${i}`)
      assert.ok(self !== undefined && self.score > 0.999, `ref-${i}: ${JSON.stringify(hits)}`)
      assert.ok(hits[0]!.score <= self.score + 1e-5)
    }
    const thumb = await services.getThumbnail('ref-0')
    assert.equal(thumb?.contentType, 'image/webp')
  })

  it('explains text + image queries with the cosine to each term', async () => {
    const hits = await services.search({ query: [{ text: 'cat', weight: 1 }, { imageId: 'ref-1', weight: 0.5 }], target: 'images', k: refs.length, explain: true, includeQueryImages: true })
    assert.equal(hits.length, refs.length)
    const [cat] = await services.embedTexts(['cat'])
    const images = await services.embedImages(refs.map((r) => r.png))
    for (const h of hits) {
      const v = images[Number(h.id.slice(4))]!
      assert.ok(Math.abs(h.terms![0]! - dot(cat!, v)) < 1e-4)
      assert.ok(Math.abs(h.terms![1]! - dot(images[1]!, v)) < 1e-4)
      const q = unit(cat!.map((x, j) => x + 0.5 * images[1]![j]!))
      assert.ok(Math.abs(h.score - dot(q, v)) < 1e-4, `score ${h.score} vs ${dot(q, v)}`)
    }
    const probs = await services.classify(refs[0]!.png, ['medal', 'square', 'cat'])
    assert.ok(Math.abs(probs.reduce((s, p) => s + p.probability, 0) - 1) < 1e-9)
  })

  it('keeps images and deletions across a restart', async () => {
    assert.equal(await services.deleteImage('ref-2'), true)
    await services.close()
    services = await openServices(config, logger)
    assert.equal((await services.stats()).images, refs.length - 1)
    const hits = await services.search({ query: [{ image: refs[2]!.png }], target: 'images', k: 10 })
    assert.ok(hits.every((h) => h.id !== 'ref-2'))
    const again = await services.search({ query: [{ imageId: 'ref-3' }], target: 'images', k: 10, explain: true, includeQueryImages: true })
    assert.equal(again.length, refs.length - 1)
    assert.ok(again.some((h) => h.id === 'ref-3' && h.score > 0.999))
  })
})
