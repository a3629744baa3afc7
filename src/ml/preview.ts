/**
 * The preview an image keeps for re-embedding with another model (PREVIEW_SIZE): its shorter side
 * scaled down to `size` px (never enlarged), orientation applied, as WebP or JPEG. Larger than the
 * 192 px thumbnail, because a model switch may need 289 px or more.
 */
import sharp, { type Sharp } from 'sharp'

/** PREVIEW_FORMAT. `auto`: JPEG for an image with no alpha channel (a photo), WebP for one with alpha (an icon's transparency kept) */
export type PreviewFormat = 'webp' | 'jpeg' | 'auto'

/**
 * libwebp effort of a WebP preview. At 480 × 320 (a 24 MP photo's preview) effort 4, sharp's
 * default, took 17 ms and 2 took 8 ms for 4% more bytes: made with every ingested photo, it was a
 * sixth of the photo's whole preparation. The thumbnail uses 2 for the same reason. A JPEG of that
 * preview takes 2.1 ms, for 25 KiB against 19 KiB: with it, prepareImage on 12 MP photos ran at
 * 0.80–0.95× its speed without a preview, against 0.69–0.80× with WebP. Hence `auto`'s JPEG for
 * images without alpha.
 */
export const PREVIEW_WEBP_EFFORT = 2

/** A preview: its bytes in PreviewOptions.format, and its size */
export interface Preview { bytes: Buffer, width: number, height: number }

export interface PreviewOptions {
  /** shorter side, px; 0 = no preview */
  size: number
  format: PreviewFormat
  /** 1-100 (default 85) */
  quality?: number
  /** decode limit, pixels */
  maxImagePixels?: number
}

/** The preview of one encoded image, or undefined when previews are off. Throws on undecodable bytes. */
export async function makePreview (bytes: Buffer, opts: PreviewOptions): Promise<Preview | undefined> {
  if (opts.size <= 0) return undefined
  const img = sharp(bytes, { limitInputPixels: opts.maxImagePixels ?? 100_000_000, failOn: 'error' })
  const hasAlpha = opts.format === 'auto' ? (await img.metadata()).hasAlpha === true : false
  return await previewOf(img.rotate(), opts, hasAlpha)
}

/**
 * The preview of an image already opened (and oriented) in `img`: prepareImage makes it from its one
 * decode. `hasAlpha` (the source's header says so) decides the `auto` format.
 */
export async function previewOf (img: Sharp, opts: PreviewOptions, hasAlpha: boolean): Promise<Preview> {
  const quality = opts.quality ?? 85
  const sized = img.resize({ width: opts.size, height: opts.size, fit: 'outside', withoutEnlargement: true })
  const jpeg = opts.format === 'jpeg' || (opts.format === 'auto' && !hasAlpha)
  const { data, info } = await (jpeg ? sized.flatten({ background: '#ffffff' }).jpeg({ quality }) : sized.webp({ quality, effort: PREVIEW_WEBP_EFFORT })).toBuffer({ resolveWithObject: true })
  return { bytes: data, width: info.width, height: info.height }
}
