/**
 * Where an image is decoded once, and at what size, so that the model input and the thumbnail
 * both come from that one decode.
 */

/**
 * The shared decode keeps at least this many times the model input (per axis) and the thumbnail
 * (long side), so each output's own resize still reduces by ≥ 2× and stays close to a resize
 * from the full image. Embedding cosine with and without it on 24 MP photos: see bench/photos.ts.
 */
export const DECODE_MARGIN = 2

/**
 * Largest shared decode, in pixels (16 MB of raw RGBA). An image whose shared decode would be
 * bigger (a long panorama, a model input near the photo's size) streams through two pipelines
 * instead, so a 100 MP upload never becomes a full-size raw copy in memory.
 */
export const SHARED_DECODE_MAX_PIXELS = 4_000_000

export interface DecodeSize { width: number, height: number }

/**
 * The size of the one decode of an image `width` × `height` (as displayed, after EXIF orientation):
 * the aspect ratio kept, scaled down as far as DECODE_MARGIN allows and never up. It equals the
 * image's size when no reduction is possible. Undefined when it exceeds SHARED_DECODE_MAX_PIXELS.
 * @param model the model's resize target (preprocessor `size`), which ignores the aspect ratio
 * @param thumbnailSize long side of the thumbnail in px; 0 when none is made
 * @param previewSize short side of the preview in px (ml/preview.ts); 0 when none is made. It needs
 *   no margin: makePreview from the bytes shrinks on load to its own size in the same way.
 */
export function sharedDecodeSize (width: number, height: number, model: DecodeSize, thumbnailSize: number, previewSize = 0): DecodeSize | undefined {
  const need = Math.max(
    DECODE_MARGIN * model.width / width,
    DECODE_MARGIN * model.height / height,
    DECODE_MARGIN * thumbnailSize / Math.max(width, height),
    previewSize / Math.min(width, height)
  )
  const scale = Math.min(1, need)
  const size = scale >= 1
    ? { width, height }
    : { width: Math.min(width, Math.max(1, Math.ceil(width * scale))), height: Math.min(height, Math.max(1, Math.ceil(height * scale))) }
  return size.width * size.height > SHARED_DECODE_MAX_PIXELS ? undefined : size
}
