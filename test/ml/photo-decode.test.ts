import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import sharp from 'sharp'
import { DECODE_MARGIN, SHARED_DECODE_MAX_PIXELS, sharedDecodeSize } from '../../src/ml/decode-plan.js'
import { loadEncoder, loadModelFolder, parsePreprocessorConfig, prepareImage } from '../../src/ml/index.js'
import type { Encoder, PreprocessorConfig } from '../../src/ml/index.js'
import { cosine } from '../../src/core/vector-math.js'
import { syntheticPhoto, wallpaperInstalled, wallpaperPhoto24mp, WALLPAPER_PHOTO } from '../helpers/photo.js'
import { TIMEOUT } from '../helpers/timeouts.js'

/** Embeddings of a 24 MP photo with and without the reduced decode agree at least this well (measured ≥ 0.9998 on 44 wallpaper photos). */
const MIN_EMBEDDING_COSINE = 0.999

describe('the shared decode size', () => {
  const mini = { width: 48, height: 48 }
  const base = { width: 346, height: 346 }

  test('a 24 MP photo is decoded at 2× the larger output, aspect kept', () => {
    assert.equal(DECODE_MARGIN, 2)
    assert.deepEqual(sharedDecodeSize(6000, 4000, mini, 192), { width: 384, height: 256 }) // the thumbnail decides
    assert.deepEqual(sharedDecodeSize(6000, 4000, base, 192), { width: 1038, height: 692 }) // the model input decides
    assert.deepEqual(sharedDecodeSize(4000, 6000, base, 0), { width: 692, height: 1038 })
  })

  test('an image too small to reduce is decoded at its own size, never enlarged', () => {
    assert.deepEqual(sharedDecodeSize(256, 256, mini, 192), { width: 256, height: 256 })
    assert.deepEqual(sharedDecodeSize(500, 400, base, 192), { width: 500, height: 400 })
  })

  test('a shared decode over the pixel cap is refused, so two pipelines stream the image instead', () => {
    // 40000 × 1000: the height already needs the full 1000 rows, so nothing can be shed
    assert.equal(sharedDecodeSize(40_000, 1000, { width: 600, height: 600 }, 192), undefined)
    assert.ok(40_000 * 1000 > SHARED_DECODE_MAX_PIXELS)
  })
})

describe('photo-sized JPEGs: one reduced decode for both outputs', { timeout: TIMEOUT.model }, () => {
  let pre: PreprocessorConfig
  let encoder: Encoder
  let photo: Buffer
  before(async () => {
    pre = (await loadModelFolder('models/align-mini')).preprocessor
    encoder = await loadEncoder({ modelDir: 'models/align-mini', executionProvider: 'cpu', workers: 1, threads: 1 })
    photo = await syntheticPhoto()
  })
  after(async () => { await encoder?.close() })

  test('one call gives the model input, the thumbnail and the photo\'s own size', async () => {
    const p = await prepareImage(photo, pre)
    assert.deepEqual([p.width, p.height], [6000, 4000])
    assert.equal(p.pixels.length, 3 * pre.inputHeight * pre.inputWidth)
    const t = await sharp(p.thumbnail).metadata()
    assert.equal(t.format, 'webp')
    assert.deepEqual([t.width, t.height], [192, 128])
  })

  /** cosine of the align-mini embeddings of `bytes` with the reduced decode and with a full-size one */
  const agreement = async (bytes: Buffer): Promise<number> => {
    const [reduced, full] = await Promise.all([prepareImage(bytes, pre), prepareImage(bytes, pre, { fullDecode: true })])
    const [a, b] = await encoder.encodePrepared([reduced, full])
    return cosine(a!, b!)
  }

  test(`a synthetic 24 MP photo embeds the same with and without shrink-on-load (cosine ≥ ${MIN_EMBEDDING_COSINE})`, async () => {
    const c = await agreement(photo)
    assert.ok(c >= MIN_EMBEDDING_COSINE, `cosine ${c}`)
  })

  test(`a real photograph at 24 MP embeds the same with and without shrink-on-load (cosine ≥ ${MIN_EMBEDDING_COSINE})`,
    { skip: wallpaperInstalled() ? false : `${WALLPAPER_PHOTO} is missing: apt-get install plasma-workspace-wallpapers` }, async () => {
      const c = await agreement(await wallpaperPhoto24mp())
      assert.ok(c >= MIN_EMBEDDING_COSINE, `cosine ${c}`)
    })

  test('at ALIGN-base\'s input size (346 px, crop 289) the tower input barely moves', async () => {
    const alignBase = parsePreprocessorConfig({
      do_resize: true,
      size: { height: 346, width: 346 },
      resample: 2,
      do_center_crop: true,
      crop_size: { height: 289, width: 289 },
      do_rescale: true,
      rescale_factor: 1 / 127.5,
      rescale_offset: true,
      do_normalize: false,
      image_mean: [0.5, 0.5, 0.5],
      image_std: [0.5, 0.5, 0.5],
      include_top: false
    })
    const [reduced, full] = await Promise.all([prepareImage(photo, alignBase), prepareImage(photo, alignBase, { fullDecode: true })])
    let sum = 0
    for (let i = 0; i < full.pixels.length; i++) sum += Math.abs(reduced.pixels[i]! - full.pixels[i]!)
    const meanLevels = sum / full.pixels.length * 127.5 // in 8-bit levels
    assert.ok(meanLevels < 2, `mean absolute difference ${meanLevels.toFixed(2)} levels of 255`)
    assert.ok(cosine(reduced.pixels, full.pixels) >= 0.999)
  })
})
