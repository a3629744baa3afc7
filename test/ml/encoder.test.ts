import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { loadEncoder, loadReference, norm } from '../../src/ml/index.js'
import type { AlignEncoder, PreparedImage, ReferenceData } from '../../src/ml/index.js'
import { PayloadTooLargeError, UnsupportedImageError } from '../../src/core/errors.js'
import { TIMEOUT } from '../helpers/timeouts.js'
import { ALIGN_BASE_SHAPE_DIR, ALIGN_BASE_SHAPE_MISSING } from '../helpers/align-base-shape.js'
import { pngDeclaring } from '../reliability/support/images.js'

const MODEL_DIR = 'models/align-mini'

function maxAbsDiff (a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length)
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!))
  return m
}

/** Decodes one image, throwing its error. */
async function prepareOne (enc: AlignEncoder, bytes: Buffer): Promise<PreparedImage> {
  const [p] = await enc.prepareImages([bytes])
  if (p === undefined || p instanceof Error) throw p ?? new Error('no result')
  return p
}

/**
 * Every model folder with a reference.json must reproduce it: the default model, the random-init
 * ALIGN export committed as a fixture (which exercises token_type_ids, center crop and pixel_values),
 * and the full-size folder in align-base's shape when it has been built (it is ~650 MB, never committed).
 */
const FOLDERS: Array<[string, string]> = [
  [MODEL_DIR, `${MODEL_DIR} is missing`],
  ['test/fixtures/align-tiny', 'test/fixtures/align-tiny is missing'],
  [ALIGN_BASE_SHAPE_DIR, ALIGN_BASE_SHAPE_MISSING]
]
for (const [dir, missing] of FOLDERS) {
  describe(`${dir} reproduces its reference.json`, { timeout: TIMEOUT.model, skip: existsSync(dir) ? undefined : missing }, () => {
    let enc: AlignEncoder
    let ref: ReferenceData
    before(async () => {
      ref = await loadReference(dir)
      enc = await loadEncoder({ modelDir: dir, executionProvider: 'cpu' })
    })
    after(async () => { await enc?.close() })

    test('tokenizer ids equal input_ids for every reference text', async () => {
      const got = await enc.tokenizer.encode(ref.texts.map((t) => t.text))
      ref.texts.forEach((t, i) => assert.deepEqual(got[i]!.ids, t.inputIds, JSON.stringify(t.text)))
    })

    test('text tower: raw outputs within tolerance', async () => {
      const raw = await enc.encodeTextsRaw(ref.texts.map((t) => t.text))
      ref.texts.forEach((t, i) => {
        const d = maxAbsDiff(raw[i]!, t.textEmbeds)
        assert.ok(d <= ref.tolerance, `${JSON.stringify(t.text)}: max |Δ| ${d} > ${ref.tolerance}`)
      })
    })

    test('image tower: raw outputs within tolerance (from pixel_values when given, else from the PNG)', async (t) => {
      for (const im of ref.images) {
        const p = await prepareOne(enc, im.png)
        if (im.pixelValues !== undefined) {
          // tensor-level parity of the tower; our resampling (libvips) is close to, not identical with, PIL's
          const [fromTensor] = await enc.runVisionRaw([im.pixelValues])
          const d = maxAbsDiff(fromTensor!, im.imageEmbeds)
          assert.ok(d <= ref.tolerance, `${im.name} (pixel_values): max |Δ| ${d} > ${ref.tolerance}`)
          t.diagnostic(`${im.name}: preprocessing max |Δ| vs pixel_values ${maxAbsDiff(p.pixels, im.pixelValues).toFixed(4)}`)
        } else {
          // the PNG is at the tower's input size, so preprocessing is only the rescale
          const [fromPng] = await enc.encodePreparedRaw([p])
          const d = maxAbsDiff(fromPng!, im.imageEmbeds)
          assert.ok(d <= ref.tolerance, `${im.name}: max |Δ| ${d} > ${ref.tolerance}`)
        }
      }
    })
  })
}

describe('encoder', { timeout: TIMEOUT.model }, () => {
  let enc: AlignEncoder
  let ref: ReferenceData
  before(async () => {
    ref = await loadReference(MODEL_DIR)
    enc = await loadEncoder({ modelDir: MODEL_DIR, executionProvider: 'cpu' })
  })
  after(async () => { await enc?.close() })

  test('runs on the CPU provider and reports it', () => {
    assert.equal(enc.provider, 'cpu')
    assert.equal(enc.workers, 1)
  })

  test('public outputs are the raw tower outputs, L2-normalized', async () => {
    const text = ref.texts[0]!.text
    const png = ref.images[0]!.png
    const [t] = await enc.encodeTexts([text])
    const [tRaw] = await enc.encodeTextsRaw([text])
    const [im] = await enc.encodeImages([png])
    const p = await prepareOne(enc, png)
    const [imRaw] = await enc.encodePreparedRaw([p])
    for (const [v, raw] of [[t!, tRaw!], [im!, imRaw!]] as const) {
      assert.equal(v.length, enc.config.embeddingDim)
      assert.ok(Math.abs(norm(v) - 1) < 1e-5)
      const n = norm(raw)
      assert.ok(maxAbsDiff(v, raw.map((x) => x / n)) < 1e-6)
    }
  })

  test('prepared images carry size, a WebP thumbnail and decode time', async () => {
    const t0 = performance.now()
    const p = await prepareOne(enc, ref.images[0]!.png)
    const wallMs = performance.now() - t0
    assert.equal(p.pixels.length, 3 * enc.folder.preprocessor.inputHeight * enc.folder.preprocessor.inputWidth)
    assert.ok(p.width > 0 && p.height > 0)
    assert.equal(p.thumbnail.subarray(8, 12).toString('ascii'), 'WEBP')
    // milliseconds spent decoding: some, and no more than the whole call took
    assert.ok(p.decodeMs > 0 && p.decodeMs <= wallMs, `decodeMs ${p.decodeMs} outside (0, ${wallMs}] ms`)
  })

  test('prepareImages returns per-item errors; encodeImages rejects with the first one', async () => {
    const good = ref.images[0]!.png
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    const res = await enc.prepareImages([good, Buffer.alloc(0), svg])
    assert.ok(!(res[0] instanceof Error))
    assert.ok(res[1] instanceof UnsupportedImageError)
    assert.ok(res[2] instanceof UnsupportedImageError)
    await assert.rejects(enc.encodeImages([good, Buffer.alloc(0), svg]), (err: Error & { statusCode?: number }) => {
      assert.equal(err.statusCode, 415)
      assert.match(err.message, /empty/)
      return true
    })
    // an image over the decode limit (default 100 MP) is that item's 413, told from a 415 by its class
    const [tooLarge] = await enc.prepareImages([await pngDeclaring(12_000, 10_000)])
    assert.ok(tooLarge instanceof PayloadTooLargeError, `expected PayloadTooLargeError, got ${String(tooLarge)}`)
    assert.equal(tooLarge.statusCode, 413)
  })

  test('empty inputs give empty outputs', async () => {
    assert.deepEqual(await enc.encodeTexts([]), [])
    assert.deepEqual(await enc.encodeImages([]), [])
  })
})
