import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import sharp from 'sharp'
import { PayloadTooLargeError, UnsupportedImageError } from '../../src/core/errors.js'
import { sharedDecodeSize } from '../../src/ml/decode-plan.js'
import { decodeError } from '../../src/ml/preprocess.js'
import { loadModelFolder, makePreview, parsePreprocessorConfig, prepareImage, toChwTensor } from '../../src/ml/index.js'
import type { PreparedImage, PreprocessorConfig } from '../../src/ml/index.js'
import { TIMEOUT } from '../helpers/timeouts.js'

type RGB = [number, number, number]
const RED: RGB = [255, 0, 0]
const BLUE: RGB = [0, 0, 255]

/** A raw RGB image from a per-pixel colour function. */
function rawImage (width: number, height: number, colour: (x: number, y: number) => RGB, channels: 3 | 4 = 3): { data: Buffer, info: { width: number, height: number, channels: 3 | 4 } } {
  const data = Buffer.alloc(width * height * channels)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const c = colour(x, y)
      data.set(channels === 4 ? [...c, 255] : c, (y * width + x) * channels)
    }
  }
  return { data, info: { width, height, channels } }
}

const solid = (c: RGB, width = 32, height = 32) => sharp({ create: { width, height, channels: 3, background: { r: c[0], g: c[1], b: c[2] } } })
const halves = (width: number, height: number) => {
  const { data, info } = rawImage(width, height, (x) => x < width / 2 ? RED : BLUE)
  return sharp(data, { raw: info })
}

function crc32 (buf: Buffer): number {
  let c = ~0
  for (const byte of buf) {
    c ^= byte
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1))
  }
  return ~c >>> 0
}

/** A real tiny PNG whose IHDR is patched (with a valid CRC) to declare width × height. */
async function pngDeclaring (width: number, height: number): Promise<Buffer> {
  const png = Buffer.from(await solid([200, 200, 200], 4, 4).png().toBuffer())
  // signature (8) + length (4) + "IHDR" (4), then width, height; the chunk CRC covers type + 13 data bytes
  png.writeUInt32BE(width, 16)
  png.writeUInt32BE(height, 20)
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29)
  return png
}

describe('image preprocessing', { timeout: TIMEOUT.unit }, () => {
  let pre: PreprocessorConfig
  before(async () => { pre = (await loadModelFolder('models/align-mini')).preprocessor })

  /** The tower input value of channel c at (x, y). */
  const at = (p: PreparedImage, c: number, x: number, y: number): number => p.pixels[c * pre.inputHeight * pre.inputWidth + y * pre.inputWidth + x]!
  /** The tower input's value for an 8-bit level (align-mini: v/127.5 − 1). */
  const level = (v: number): number => v * pre.rescaleFactor - (pre.rescaleOffset ? 1 : 0)
  const rgbAt = (p: PreparedImage, x: number, y: number): RGB => [at(p, 0, x, y), at(p, 1, x, y), at(p, 2, x, y)]
  const near = (got: RGB, want: RGB, tol: number, what: string) =>
    got.forEach((g, i) => assert.ok(Math.abs(g - level(want[i]!)) <= tol, `${what}: channel ${i} is ${g}, want ≈ ${level(want[i]!)}`))

  test('output is a CHW float tensor of the model input size, values in the rescaled range', async () => {
    const png = await solid(RED).png().toBuffer()
    const t0 = performance.now()
    const p = await prepareImage(png, pre)
    const wallMs = performance.now() - t0
    assert.ok(p.pixels instanceof Float32Array)
    assert.equal(p.pixels.length, 3 * pre.inputHeight * pre.inputWidth)
    near(rgbAt(p, 5, 5), RED, 1e-6, 'solid red')
    // decodeMs is the time this call spent decoding, in milliseconds: some, and no more than the call took
    assert.ok(p.decodeMs > 0 && p.decodeMs <= wallMs, `decodeMs ${p.decodeMs} outside (0, ${wallMs}] ms`)
  })

  test('an EXIF-rotated JPEG comes out upright (orientation 6: left half red → top half red)', async () => {
    const jpeg = await halves(64, 32).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer()
    assert.equal((await sharp(jpeg).metadata()).orientation, 6)
    const p = await prepareImage(jpeg, pre)
    assert.deepEqual([p.width, p.height], [32, 64]) // displayed size
    const mid = pre.inputWidth >> 1
    near(rgbAt(p, mid, 4), RED, 0.15, 'top')
    near(rgbAt(p, mid, pre.inputHeight - 5), BLUE, 0.15, 'bottom')
    near(rgbAt(p, 2, 4), RED, 0.15, 'top left')
    near(rgbAt(p, pre.inputWidth - 3, 4), RED, 0.15, 'top right')
  })

  test('the aspect ratio is ignored: a wide image fills the whole square input', async () => {
    const p = await prepareImage(await halves(200, 20).png().toBuffer(), pre)
    near(rgbAt(p, 2, 2), RED, 1e-6, 'left')
    near(rgbAt(p, pre.inputWidth - 3, pre.inputHeight - 3), BLUE, 1e-6, 'right')
  })

  test('a CMYK JPEG is converted to sRGB', async () => {
    const cmyk = await solid(RED).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer()
    assert.equal((await sharp(cmyk).metadata()).space, 'cmyk')
    const p = await prepareImage(cmyk, pre)
    const [r, g, b] = rgbAt(p, 10, 10)
    assert.ok(r > 0.7 && g < -0.5 && b < -0.5, `CMYK red came out as ${[r, g, b]}`)
  })

  test('a 16-bit PNG is reduced to 8 bits per channel', async () => {
    const png16 = await solid([255, 128, 0]).toColourspace('rgb16').png().toBuffer()
    assert.equal((await sharp(png16).metadata()).depth, 'ushort')
    const p = await prepareImage(png16, pre)
    near(rgbAt(p, 10, 10), [255, 128, 0], 2 * pre.rescaleFactor, '16-bit orange')
  })

  test('a grayscale image becomes three equal channels', async () => {
    const gray = await solid([100, 100, 100]).toColourspace('b-w').png().toBuffer()
    assert.equal((await sharp(gray).metadata()).channels, 1)
    const p = await prepareImage(gray, pre)
    near(rgbAt(p, 10, 10), [100, 100, 100], 1.5 * pre.rescaleFactor, 'gray')
  })

  test('alpha is flattened onto white', async () => {
    const clear = await sharp({ create: { width: 16, height: 16, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer()
    near(rgbAt(await prepareImage(clear, pre), 8, 8), [255, 255, 255], 1e-6, 'transparent')
    const halfRed = await sharp({ create: { width: 16, height: 16, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0.5 } } }).png().toBuffer()
    near(rgbAt(await prepareImage(halfRed, pre), 8, 8), [255, 127.5, 127.5], 2 * pre.rescaleFactor, 'half-transparent red')
  })

  test('an animated GIF gives its first frame', async () => {
    const frames = await Promise.all([RED, BLUE].map(async (c) => await solid(c, 16, 16).png().toBuffer()))
    const gif = await sharp(frames, { join: { animated: true } }).gif({ delay: [100, 100] }).toBuffer()
    assert.equal((await sharp(gif).metadata()).pages, 2)
    const p = await prepareImage(gif, pre)
    assert.deepEqual([p.width, p.height], [16, 16])
    near(rgbAt(p, 8, 8), RED, 0.05, 'first frame')
  })

  test('a WebP thumbnail keeps the aspect ratio, long side at most 192 px, never enlarged', async () => {
    const big = await prepareImage(await halves(400, 200).png().toBuffer(), pre)
    const meta = await sharp(big.thumbnail).metadata()
    assert.equal(meta.format, 'webp')
    assert.deepEqual([meta.width, meta.height], [192, 96])
    const small = await prepareImage(await halves(50, 30).png().toBuffer(), pre)
    const sm = await sharp(small.thumbnail).metadata()
    assert.deepEqual([sm.width, sm.height], [50, 30])
  })

  const rejects415 = async (bytes: Buffer, message: RegExp): Promise<void> => {
    await assert.rejects(prepareImage(bytes, pre), (err: Error & { statusCode?: number }) => {
      assert.ok(err instanceof UnsupportedImageError, `expected UnsupportedImageError, got ${err.name}: ${err.message}`)
      assert.equal(err.statusCode, 415)
      assert.match(err.message, message)
      return true
    })
  }

  test('zero bytes → 415', async () => { await rejects415(Buffer.alloc(0), /empty/) })
  test('text bytes → 415', async () => { await rejects415(Buffer.from('hello, this is not an image\n'), /not a supported image/) })
  test('a truncated JPEG → 415', async () => {
    const { data, info } = rawImage(256, 256, (x, y) => [x % 256, y % 256, (x * y) % 256])
    const jpeg = await sharp(data, { raw: info }).jpeg({ quality: 90 }).toBuffer()
    // one line: the format, corrupt (not unsupported), and libvips's reason once, not repeated per line
    await rejects415(jpeg.subarray(0, jpeg.length >> 1), /^the JPEG file is corrupt or truncated: [^\n]+$/)
    await assert.rejects(prepareImage(jpeg.subarray(0, jpeg.length >> 1), pre), (err: Error) => {
      const parts = err.message.split(': ').slice(1).join(': ').split('; ')
      assert.equal(new Set(parts).size, parts.length, `a reason repeats: ${err.message}`)
      return true
    })
  })
  test('a decoder message of several repeated lines → one line naming the format and whether it is corrupt or unsupported', () => {
    const corrupt = decodeError(new Error('VipsJpeg: Premature end of input file\nVipsJpeg: Premature end of input file\n'), 1e8, 'JPEG')
    assert.equal(corrupt.message, 'the JPEG file is corrupt or truncated: VipsJpeg: Premature end of input file')
    const unsupported = decodeError(new Error('heifload_buffer: Unsupported feature: Unsupported codec\n'), 1e8, 'AVIF/HEIF')
    assert.equal(unsupported.message, 'the AVIF/HEIF file uses a variant this server cannot decode (unsupported): heifload_buffer: Unsupported feature: Unsupported codec')
  })
  test('SVG is refused, never rasterized → 415', async () => {
    await rejects415(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><image href="file:///etc/passwd"/></svg>'), /SVG/)
    await rejects415(Buffer.from('\uFEFF  <?xml version="1.0"?>\n<!DOCTYPE svg><svg xmlns="http://www.w3.org/2000/svg"/>'), /SVG/)
  })

  test('a PNG declaring 50000×50000 → 413 quickly, without allocating', async () => {
    const bomb = await pngDeclaring(50_000, 50_000)
    assert.deepEqual([(await sharp(bomb, { limitInputPixels: false }).metadata()).width], [50_000])
    const t0 = performance.now()
    await assert.rejects(prepareImage(bomb, pre), (err: Error & { statusCode?: number }) => {
      assert.ok(err instanceof PayloadTooLargeError, `expected PayloadTooLargeError, got ${err.name}: ${err.message}`)
      assert.equal(err.statusCode, 413)
      return true
    })
    assert.ok(performance.now() - t0 < 1000, 'took too long: the image was decoded')
  })

  test('maxImagePixels applies to ordinary images too', async () => {
    const png = await solid(RED, 100, 100).png().toBuffer()
    await assert.rejects(prepareImage(png, pre, { maxImagePixels: 5000 }), PayloadTooLargeError)
    await prepareImage(png, pre, { maxImagePixels: 10_000 })
  })
})

describe('tensor layout from the preprocessor config', () => {
  const alignLike = (over: Record<string, unknown> = {}) => parsePreprocessorConfig({
    do_resize: true,
    size: { height: 6, width: 6 },
    resample: 2,
    do_center_crop: true,
    crop_size: { height: 3, width: 3 },
    do_rescale: true,
    rescale_factor: 1 / 127.5,
    rescale_offset: true,
    do_normalize: false,
    image_mean: [0.5, 0.5, 0.5],
    image_std: [0.5, 0.5, 0.5],
    include_top: false,
    ...over
  })

  test('center crop takes the floored offset, as transformers does (346 → 289 starts at 28)', () => {
    const cfg = alignLike()
    // pixel value encodes its position: R = x, G = y, B = 7
    const rgb = new Uint8Array(6 * 6 * 3)
    for (let y = 0; y < 6; y++) for (let x = 0; x < 6; x++) rgb.set([x, y, 7], (y * 6 + x) * 3)
    const t = toChwTensor(rgb, 6, 6, cfg)
    assert.equal(t.length, 3 * 3 * 3)
    const back = (v: number) => Math.round((v + 1) * 127.5)
    assert.equal(back(t[0]!), 1) // first R = x of the crop's left edge: floor((6 - 3) / 2)
    assert.equal(back(t[9]!), 1) // first G = y of its top edge
    assert.equal(back(t[26]!), 7) // last B
    assert.equal(Math.floor((346 - 289) / 2), 28)
  })

  test('rescale, normalize and include_top compose like EfficientNetImageProcessor', () => {
    const rgb = new Uint8Array([255, 0, 51])
    const one = (over: Record<string, unknown>) => toChwTensor(rgb, 1, 1, alignLike({ size: { height: 1, width: 1 }, do_center_crop: false, ...over }))
    assert.deepEqual([...one({})].map((v) => +v.toFixed(5)), [1, -1, -0.6])
    const norm = one({ rescale_offset: false, rescale_factor: 1 / 255, do_normalize: true, image_mean: [0.5, 0.5, 0.5], image_std: [0.25, 0.5, 0.5] })
    assert.deepEqual([...norm].map((v) => +v.toFixed(5)), [2, -1, -0.6])
    const top = one({ rescale_offset: false, rescale_factor: 1 / 255, do_normalize: true, include_top: true, image_mean: [0.5, 0.5, 0.5], image_std: [0.25, 0.5, 0.5] })
    assert.deepEqual([...top].map((v) => +v.toFixed(5)), [8, -2, -1.2])
  })
})

describe('the preview format', () => {
  let pre: PreprocessorConfig
  before(async () => { pre = (await loadModelFolder('models/align-mini')).preprocessor })
  const kind = async (b: Buffer): Promise<string | undefined> => (await sharp(b).metadata()).format

  test('auto is JPEG for an image with no alpha (a photo) and WebP for one with alpha, from prepareImage and from the bytes', async () => {
    const photo = await solid(RED, 600, 400).jpeg().toBuffer()
    const icon = await sharp({ create: { width: 600, height: 400, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 0.5 } } }).png().toBuffer()
    const opts = { size: 320, format: 'auto' as const }
    for (const [bytes, want] of [[photo, 'jpeg'], [icon, 'webp']] as const) {
      const prepared = await prepareImage(bytes, pre, { preview: opts })
      assert.equal(await kind(prepared.preview!.bytes), want)
      assert.equal(await kind((await makePreview(bytes, opts))!.bytes), want)
      assert.deepEqual([prepared.preview!.width, prepared.preview!.height], [480, 320])
    }
    // a named format is kept whatever the image
    assert.equal(await kind((await prepareImage(photo, pre, { preview: { size: 320, format: 'webp' } })).preview!.bytes), 'webp')
    assert.equal(await kind((await makePreview(icon, { size: 320, format: 'jpeg' }))!.bytes), 'jpeg')
  })
})

describe('an image whose shared decode would pass the pixel cap', () => {
  test('is streamed through separate pipelines, each output sized from the image itself', async () => {
    const pre = (await loadModelFolder('models/align-mini')).preprocessor
    // 16000 × 300: the preview keeps all 300 rows, so one shared decode would be the whole 4.8 MP
    const preview = { size: 320, format: 'jpeg' as const }
    assert.equal(sharedDecodeSize(16_000, 300, pre.size, 192, preview.size), undefined)
    const strip = await solid(RED, 16_000, 300).png().toBuffer()
    const prepared = await prepareImage(strip, pre, { preview })
    const thumb = await sharp(prepared.thumbnail).metadata()
    assert.deepEqual([thumb.width, thumb.height], [192, 4], 'the thumbnail fits in 192 px')
    assert.deepEqual([prepared.preview!.width, prepared.preview!.height], [16_000, 300], 'never enlarged')
    assert.equal(prepared.pixels.length, 3 * pre.inputHeight * pre.inputWidth)
  })
})
