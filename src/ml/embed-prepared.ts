/** Pairs prepared images with their embeddings for ingest, keeping each item's error in its place. */
import type { EmbeddedImage, PreparedImage } from './types.js'

/**
 * Encoder.embedForIngest from its two steps: encodes the prepared images (errors skipped) and pairs
 * each with its embedding, keeping the per-item errors in place.
 * @param encode L2-normalized embeddings, one per image given, in order
 */
export async function embedPrepared (prepared: Array<PreparedImage | Error>, encode: (images: PreparedImage[]) => Promise<Float32Array[]>): Promise<Array<EmbeddedImage | Error>> {
  const vectors = await encode(prepared.filter((p): p is PreparedImage => !(p instanceof Error)))
  let k = 0
  return prepared.map((p) => p instanceof Error ? p : { embedding: vectors[k++]!, width: p.width, height: p.height, thumbnail: p.thumbnail, decodeMs: p.decodeMs, ...(p.preview === undefined ? {} : { preview: p.preview }) })
}
