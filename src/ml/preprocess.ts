import sharp from 'sharp'
import type { Metadata, OutputInfo, Sharp } from 'sharp'
import { PayloadTooLargeError, UnsupportedImageError } from '../core/errors.js'
import type { PreprocessorConfig } from './model-folder.js'
import { sharedDecodeSize, type DecodeSize } from './decode-plan.js'
import { previewOf, type Preview, type PreviewOptions } from './preview.js'
import type { PreparedImage } from './types.js'

export interface PrepareOptions {
  /** largest decoded image accepted, in pixels (width × height); default 100 MP. Larger → PayloadTooLargeError (413). */
  maxImagePixels?: number
  /** long side of the WebP thumbnail in px (default 192; never enlarged); 0 skips the thumbnail (an empty Buffer is returned) */
  thumbnailSize?: number
  /**
   * Decode at full size, with no shrink-on-load, into one raw copy of the whole image (72 MB for
   * 24 MP): the reference the usual reduced decode is measured against. Default false.
   */
  fullDecode?: boolean
  /** also make the preview kept for re-embedding (ml/preview.ts) from the same decode; none when absent or its size is 0 */
  preview?: PreviewOptions
}

export const DEFAULT_MAX_IMAGE_PIXELS = 100_000_000
export const DEFAULT_THUMBNAIL_SIZE = 192

/** Formats sharp may decode for us. Anything else (SVG, PDF, …) is refused before and after sharp reads the header. */
const ACCEPTED_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif'])
const ACCEPTED_NAMES = 'JPEG, PNG, WebP, GIF, AVIF or TIFF'

function startsWith (b: Buffer, sig: number[], at = 0): boolean {
  return b.length >= at + sig.length && sig.every((x, i) => b[at + i] === x)
}

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0))

/**
 * Accepts only the magic numbers of the formats we decode. This keeps SVG (which librsvg would
 * rasterize, following external and file:// references), PDF and friends away from sharp entirely.
 */
function sniff (bytes: Buffer): string {
  if (bytes.length === 0) throw new UnsupportedImageError('the image is empty (0 bytes)')
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'JPEG'
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'PNG'
  if (startsWith(bytes, ascii('GIF87a')) || startsWith(bytes, ascii('GIF89a'))) return 'GIF'
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8)) return 'WebP'
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) return 'TIFF'
  if (startsWith(bytes, ascii('ftyp'), 4)) return 'AVIF/HEIF' // sharp decides which brands it can decode
  const head = bytes.subarray(0, 4096).toString('utf8').replace(/^\uFEFF/, '').trimStart().toLowerCase()
  if (head.startsWith('<') && (head.includes('<svg') || head.startsWith('<?xml') || head.startsWith('<!doctype svg'))) {
    throw new UnsupportedImageError('SVG images are not accepted (they are not rasterized: an SVG may reference external or file:// resources); send a PNG or JPEG instead')
  }
  if (startsWith(bytes, [0x1f, 0x8b])) throw new UnsupportedImageError(`gzip-compressed data (perhaps SVGZ) is not an image; send ${ACCEPTED_NAMES}`)
  if (startsWith(bytes, ascii('%PDF'))) throw new UnsupportedImageError(`PDF is not accepted; send ${ACCEPTED_NAMES}`)
  throw new UnsupportedImageError(`not a supported image: the bytes are not ${ACCEPTED_NAMES}`)
}

/** libvips words for "this build cannot read that kind of file", as opposed to damaged data */
const UNSUPPORTED_HINTS = /unsupported|not a known|no (decoding )?plugin|not supported|compression .* not|bad (brand|ftyp)/i

/**
 * One line for a decoder failure: the format, whether the file is corrupt (damaged or truncated
 * data) or unsupported (a variant this build cannot decode), and libvips's reason, each distinct
 * line once (libvips repeats its messages, one per line). The caller names the file.
 */
export function decodeError (err: unknown, maxPixels: number, format = 'image'): Error {
  const raw = err instanceof Error ? err.message : String(err)
  if (/pixel limit/i.test(raw)) {
    return new PayloadTooLargeError(`the image has more than ${maxPixels} pixels (width × height); scale it down before uploading`)
  }
  const reason = [...new Set(raw.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== ''))].join('; ').slice(0, 300)
  const kind = UNSUPPORTED_HINTS.test(raw) ? 'uses a variant this server cannot decode (unsupported)' : 'is corrupt or truncated'
  return new UnsupportedImageError(`the ${format} file ${kind}: ${reason === '' ? 'the decoder gave no reason' : reason}`)
}

/**
 * The affine map raw 8-bit value → tower input, per channel, composed from the preprocessor config:
 * rescale (x·factor, −1 when rescale_offset), normalize ((x − mean)/std), include_top (x/std once more).
 */
function channelAffine (pre: PreprocessorConfig): Array<{ a: number, b: number }> {
  return [0, 1, 2].map((c) => {
    let a = pre.doRescale ? pre.rescaleFactor : 1
    let b = pre.doRescale && pre.rescaleOffset ? -1 : 0
    if (pre.doNormalize) {
      const mean = pre.imageMean[c]!
      const std = pre.imageStd[c]!
      a /= std
      b = (b - mean) / std
    }
    if (pre.includeTop) {
      const std = pre.imageStd[c]!
      a /= std
      b /= std
    }
    return { a, b }
  })
}

/**
 * Interleaved RGB uint8 (height × width × 3) → CHW float32 [3, inputHeight, inputWidth],
 * taking the center crop (top/left offsets floored, as transformers does) and applying the rescale/normalize.
 */
export function toChwTensor (rgb: Uint8Array, width: number, height: number, pre: PreprocessorConfig): Float32Array {
  const H = pre.inputHeight
  const W = pre.inputWidth
  const top = Math.floor((height - H) / 2)
  const left = Math.floor((width - W) / 2)
  const out = new Float32Array(3 * H * W)
  const affine = channelAffine(pre)
  for (let c = 0; c < 3; c++) {
    const { a, b } = affine[c]!
    const plane = c * H * W
    for (let y = 0; y < H; y++) {
      let src = ((y + top) * width + left) * 3 + c
      let dst = plane + y * W
      for (let x = 0; x < W; x++, src += 3, dst++) out[dst] = rgb[src]! * a + b
    }
  }
  return out
}

/** Raw interleaved 8-bit pixels as sharp's raw input option describes them. */
interface RawImage { data: Buffer, info: { width: number, height: number, channels: 1 | 2 | 3 | 4 } }

/** WebP settings of the thumbnail. Effort 1 would save ~4% of an image's preparation for ~33% bigger thumbnails (measured); 2 is kept. */
const THUMBNAIL_WEBP = { quality: 80, effort: 2 }

/** The model input pipeline after orientation: resize (aspect ignored), flatten, 8-bit sRGB RGB. */
function modelPixels (img: Sharp, pre: PreprocessorConfig): Promise<{ data: Buffer, info: OutputInfo }> {
  const bg = { r: pre.background[0], g: pre.background[1], b: pre.background[2] }
  return img
    .resize(pre.size.width, pre.size.height, { fit: 'fill', kernel: pre.kernel, fastShrinkOnLoad: false })
    .flatten({ background: bg })
    .toColourspace('srgb')
    .removeAlpha()
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true })
}

/** The thumbnail after orientation: aspect kept, long side ≤ size, never enlarged (no resize at all when already small). */
function thumbnailWebp (img: Sharp, size: number, width: number, height: number): Promise<Buffer> {
  const fits = width <= size && height <= size
  return (fits ? img : img.resize(size, size, { fit: 'inside', withoutEnlargement: true }))
    .toColourspace('srgb')
    .webp(THUMBNAIL_WEBP)
    .toBuffer()
}

/**
 * The one decode: oriented, first frame, 8-bit sRGB, alpha kept (the thumbnail keeps it, the model
 * input flattens it), reduced to `size` when that is smaller. For a JPEG the reduction starts in
 * the decoder (libjpeg's DCT scaling, sharp's fastShrinkOnLoad), so a 24 MP photo is never
 * decoded at full size; sharedDecodeSize leaves the margin that keeps this faithful. Other formats
 * keep sharp's exact reduction (WebP's scaled decode is coarser).
 */
async function decodeShared (input: Sharp, size: DecodeSize, full: DecodeSize, format: string, kernel: PreprocessorConfig['kernel']): Promise<RawImage> {
  const oriented = input.autoOrient()
  const reduced = size.width < full.width || size.height < full.height
    ? oriented.resize(size.width, size.height, { fit: 'fill', kernel, fastShrinkOnLoad: format === 'jpeg' })
    : oriented
  const { data, info } = await reduced.toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true })
  return { data, info: { width: info.width, height: info.height, channels: info.channels } }
}

/**
 * Decodes image bytes and turns them into the vision tower's input, as preprocessor_config.json says.
 *
 * Steps: magic-number check (SVG and other formats refused) → header read with the pixel limit →
 * EXIF orientation → first frame only → alpha flattened onto `background` (white) → 8-bit sRGB RGB
 * (CMYK, grayscale, 16-bit converted) → resize to `size` ignoring the aspect ratio (ALIGN does) with
 * the `resample` kernel → center crop → rescale/normalize → CHW Float32Array.
 * A WebP thumbnail (aspect kept, long side ≤ thumbnailSize), and the preview when asked, are made
 * from the same decode, which is reduced (for JPEG, in the decoder) to DECODE_MARGIN× the larger of
 * the model input and the thumbnail, and no smaller than the preview; only an image whose shared
 * decode would exceed SHARED_DECODE_MAX_PIXELS goes through separate pipelines.
 *
 * @throws UnsupportedImageError (415) for empty, SVG, unknown or undecodable input
 * @throws PayloadTooLargeError (413) when width × height exceeds maxImagePixels; only the header is read
 */
export async function prepareImage (bytes: Buffer, pre: PreprocessorConfig, opts: PrepareOptions = {}): Promise<PreparedImage> {
  const t0 = performance.now()
  const maxPixels = opts.maxImagePixels ?? DEFAULT_MAX_IMAGE_PIXELS
  const thumbSize = opts.thumbnailSize ?? DEFAULT_THUMBNAIL_SIZE
  const format = sniff(bytes)
  // failOn 'error' rejects truncated and corrupt data but tolerates libjpeg's benign warnings.
  const input = sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error', pages: 1 })
  let meta: Metadata
  try {
    meta = await input.metadata()
  } catch (err) {
    throw decodeError(err, maxPixels, format)
  }
  if (meta.format === undefined || !ACCEPTED_FORMATS.has(meta.format)) {
    throw new UnsupportedImageError(`image format ${meta.format ?? 'unknown'} is not accepted; send ${ACCEPTED_NAMES}`)
  }
  // Belt and braces: sharp enforces the limit when decoding, but a header we can already see as too big is refused here.
  const pixelCount = (meta.width ?? 0) * (meta.height ?? 0)
  if (pixelCount > maxPixels) throw decodeError(new Error('pixel limit'), maxPixels)
  const width = meta.autoOrient?.width ?? meta.width ?? 0
  const height = meta.autoOrient?.height ?? meta.height ?? 0
  let decoded: { data: Buffer, info: OutputInfo }
  let thumb: Buffer
  let preview: Preview | undefined
  const previewOpts = (opts.preview?.size ?? 0) > 0 ? opts.preview : undefined
  try {
    const shared = opts.fullDecode === true ? { width, height } : sharedDecodeSize(width, height, pre.size, thumbSize, previewOpts?.size)
    const raw = shared === undefined ? undefined : await decodeShared(input, shared, { width, height }, meta.format, pre.kernel)
    // each output reads the one shared decode when there is one, the encoded bytes otherwise
    const open = raw === undefined ? (): Sharp => input.clone().autoOrient() : (): Sharp => sharp(raw.data, { raw: raw.info, limitInputPixels: false })
    const size = raw === undefined ? { width, height } : raw.info
    ;[decoded, thumb, preview] = await Promise.all([
      modelPixels(open(), pre),
      thumbSize > 0 ? thumbnailWebp(open(), thumbSize, size.width, size.height) : Buffer.alloc(0),
      previewOpts === undefined ? undefined : previewOf(open(), previewOpts, meta.hasAlpha === true)
    ])
  } catch (err) {
    throw decodeError(err, maxPixels, format)
  }
  const { data, info } = decoded
  if (info.channels !== 3 || info.width !== pre.size.width || info.height !== pre.size.height) {
    throw new UnsupportedImageError(`the image decoded to an unexpected shape ${info.width}×${info.height}×${info.channels}`)
  }
  return {
    pixels: toChwTensor(data, info.width, info.height, pre),
    width,
    height,
    thumbnail: thumb,
    ...(preview === undefined ? {} : { preview }),
    decodeMs: performance.now() - t0
  }
}
