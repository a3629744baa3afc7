/**
 * A small deterministic Encoder for core tests: no ONNX, same interface as src/ml's.
 * - text embedding: unit vector from SHA-256 of "text:" + text
 * - image embedding: unit vector from SHA-256 of the file bytes
 * Images really are decoded with sharp (size, thumbnail), so non-images fail like the real one.
 */
import { createHash } from 'node:crypto'
import sharp from 'sharp'
import { UnsupportedImageError } from '../../src/core/errors.js'
import { embedPrepared } from '../../src/ml/embed-prepared.js'
import type { Encoder, EncoderOptions, ModelConfig, PreparedImage } from '../../src/ml/types.js'

export const FAKE_ENCODER_DIM = 16

export function fakeModelConfig (dim = FAKE_ENCODER_DIM, modelId = `fake-encoder-${dim}`): ModelConfig {
  return {
    name: 'fake-encoder',
    modelId,
    embeddingDim: dim,
    maxTextLength: 32,
    temperature: 0.05,
    promptTemplate: 'an icon of {}',
    usesTokenTypeIds: false,
    license: 'CC0-1.0',
    source: 'test/helpers/fake-encoder.ts'
  }
}

/** a unit vector of `dim` derived from the hash of `data` */
export function hashVector (data: Buffer | string, dim = FAKE_ENCODER_DIM): Float32Array {
  const v = new Float32Array(dim)
  let block = createHash('sha256').update(data).digest()
  for (let i = 0; i < dim; i++) {
    if (i > 0 && i % 32 === 0) block = createHash('sha256').update(block).digest()
    v[i] = (block[i % 32]! - 127.5) / 127.5
  }
  return normalize(v)
}

export function normalize (v: Float32Array): Float32Array {
  let s = 0
  for (const x of v) s += x * x
  const n = Math.sqrt(s)
  return n === 0 ? v : v.map((x) => x / n)
}

export const textVector = (text: string, dim = FAKE_ENCODER_DIM): Float32Array => hashVector(`text:${text}`, dim)
export const imageVector = (bytes: Buffer, dim = FAKE_ENCODER_DIM): Float32Array => hashVector(bytes, dim)

export interface FakeEncoderOptions {
  dim?: number
  modelId?: string
  /** awaited before each encodePrepared call (to slow down or interrupt a job in tests) */
  beforeEncode?: (count: number) => void | Promise<void>
}

export interface FakeEncoder extends Encoder {
  readonly calls: { texts: number, images: number, prepared: number }
  closed: boolean
}

export function createFakeEncoder (opts: FakeEncoderOptions = {}): FakeEncoder {
  const dim = opts.dim ?? FAKE_ENCODER_DIM
  const config = fakeModelConfig(dim, opts.modelId)
  const prepared = new WeakMap<Float32Array, Float32Array>()
  const prepareOne = async (bytes: Buffer): Promise<PreparedImage> => {
    const started = Date.now()
    let meta
    try {
      meta = await sharp(bytes).metadata()
    } catch {
      throw new UnsupportedImageError('input is not a supported image (JPEG, PNG, WebP, GIF, AVIF, TIFF)')
    }
    const thumbnail = await sharp(bytes).resize(8, 8, { fit: 'inside' }).webp().toBuffer()
    const pixels = new Float32Array(3 * 4 * 4)
    prepared.set(pixels, imageVector(bytes, dim))
    return { pixels, width: meta.width ?? 0, height: meta.height ?? 0, thumbnail, decodeMs: Date.now() - started }
  }
  const enc: FakeEncoder = {
    config,
    provider: 'cpu',
    calls: { texts: 0, images: 0, prepared: 0 },
    closed: false,
    async encodeTexts (texts) {
      enc.calls.texts += texts.length
      return texts.map((t) => textVector(t, dim))
    },
    async prepareImages (images) {
      return await Promise.all(images.map(async (b) => {
        try { return await prepareOne(b) } catch (err) { return err as Error }
      }))
    },
    async embedForIngest (images) {
      return await embedPrepared(await enc.prepareImages(images), async (good) => await enc.encodePrepared(good))
    },
    async encodePrepared (images) {
      await opts.beforeEncode?.(images.length)
      enc.calls.prepared += images.length
      return images.map((p) => {
        const v = prepared.get(p.pixels)
        if (v === undefined) throw new Error('not prepared by this encoder')
        return v
      })
    },
    async encodeImages (images) {
      enc.calls.images += images.length
      const out: Float32Array[] = []
      for (const b of images) out.push(imageVector((await prepareOne(b)) && b, dim))
      return out
    },
    async close () { enc.closed = true }
  }
  return enc
}

/** a `loadEncoder` replacement for ServicesConfig.loadEncoder */
export function fakeLoadEncoder (opts: FakeEncoderOptions = {}): (o: EncoderOptions) => Promise<FakeEncoder> {
  return async () => createFakeEncoder(opts)
}

/** A small PNG whose bytes (and so embedding) differ per seed (seed < 65536). */
export async function makeImage (seed: number, size = 8): Promise<Buffer> {
  return await sharp({ create: { width: size, height: size + 1, channels: 3, background: { r: seed & 255, g: (seed >> 8) & 255, b: 77 } } }).png().toBuffer()
}
