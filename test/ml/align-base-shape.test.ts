import assert from 'node:assert/strict'
import { existsSync, statSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { loadEncoder, loadModelFolder, norm } from '../../src/ml/index.js'
import type { AlignEncoder } from '../../src/ml/index.js'
import { ALIGN_BASE_SHAPE_DIR, ALIGN_BASE_SHAPE_MISSING, alignBaseShapeBuilt } from '../helpers/align-base-shape.js'
import { modelBytes } from '../../src/ml/ort-session.js'
import { TIMEOUT } from '../helpers/timeouts.js'

/**
 * The folder `npm run model:align-shape` builds must have kakaobrain/align-base's shape, since every
 * full-size figure in bench/report.md stands on it: 640-d, 289×289 input, a 30,522-entry vocabulary
 * with token_type_ids, 64 tokens, and about 172M float32 parameters (ALIGN-NOTES.md: ~62M + ~110M).
 */
describe('the full-size folder in align-base\'s shape', { timeout: TIMEOUT.model, skip: alignBaseShapeBuilt() ? undefined : ALIGN_BASE_SHAPE_MISSING }, () => {
  let enc: AlignEncoder
  before(async () => { enc = await loadEncoder({ modelDir: ALIGN_BASE_SHAPE_DIR, executionProvider: 'cpu' }) })
  after(async () => { await enc?.close() })

  test('configs: 640-d, 289×289 after a 346 resize and center crop, x/127.5 − 1, 64 tokens with token types', async () => {
    const { config, preprocessor: pre } = await loadModelFolder(ALIGN_BASE_SHAPE_DIR)
    assert.equal(config.embeddingDim, 640)
    assert.equal(config.maxTextLength, 64)
    assert.equal(config.usesTokenTypeIds, true)
    assert.deepEqual([pre.size.height, pre.size.width, pre.inputHeight, pre.inputWidth], [346, 346, 289, 289])
    assert.equal(pre.kernel, 'linear')
    assert.equal(pre.rescaleOffset, true)
    assert.equal(pre.doNormalize, false)
  })

  test('the towers hold ALIGN-base\'s ~172M float32 parameters: 62M vision, 109M text, as external data beside a small graph', () => {
    const millions = (bytes: number): number => bytes / 4 / 1e6
    const [v, t] = [modelBytes(enc.folder.visionPath), modelBytes(enc.folder.textPath)]
    assert.ok(millions(v) > 58 && millions(v) < 66, `vision ${millions(v).toFixed(1)}M parameters`)
    assert.ok(millions(t) > 105 && millions(t) < 114, `text ${millions(t).toFixed(1)}M parameters`)
    // the exporter moves towers of 64 MiB or more to <tower>.onnx.data (models/README.md)
    for (const file of [enc.folder.visionPath, enc.folder.textPath]) {
      assert.ok(existsSync(`${file}.data`) && statSync(file).size < 2 ** 20, `${file} keeps its weights inline`)
    }
  })

  test('BERT\'s vocabulary layout: [CLS] 101 … [SEP] 102, ids below 30522, truncation at 64', async () => {
    const long = Array.from({ length: 200 }, (_, i) => `word${i}`).join(' ')
    const [short, cut] = await enc.tokenizer.encode(['a photo of a cat', long])
    assert.equal(short!.ids[0], 101)
    assert.equal(short!.ids.at(-1), 102)
    assert.equal(cut!.ids.length, 64)
    assert.equal(cut!.ids.at(-1), 102)
    for (const id of [...short!.ids, ...cut!.ids]) assert.ok(id >= 0 && id < 30522)
  })

  test('a batch of two images and of two texts gives two 640-d unit vectors each, and different inputs differ', async () => {
    const pixels = [new Float32Array(3 * 289 * 289).fill(-0.5), new Float32Array(3 * 289 * 289).map((_, i) => Math.sin(i / 97))]
    const images = await enc.runVisionRaw(pixels)
    const texts = await enc.encodeTexts(['a red car', 'two dogs on a beach at sunset'])
    for (const v of [...images, ...texts]) assert.equal(v.length, 640)
    for (const v of texts) assert.ok(Math.abs(norm(v) - 1) < 1e-5)
    assert.ok(images.every((v) => norm(v) > 0), 'an image embedding is all zeros')
    assert.notDeepEqual(images[0], images[1])
    assert.notDeepEqual(texts[0], texts[1])
  })
})
