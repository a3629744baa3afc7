/**
 * Where re-embedding an image with another model gets its pixels, best first: the file its
 * `source` names under IMPORT_DIR or DEMO_POOL (only when its bytes still hash to the stored image),
 * the original bytes kept at upload (KEEP_ORIGINALS), the stored preview when it is large enough for
 * the model. Anything else is "weak": only the caller's explicit choice embeds it from the small
 * preview or thumbnail (never a silent upscale).
 */
import { realpath } from 'node:fs/promises'
import type { ReembedImage } from '../backends/ports.js'
import { readJobFile } from '../jobs/index.js'
import { sha256 } from './core.js'

export type ReembedFrom = 'source' | 'original' | 'preview'

/** Real paths of the folders sources are looked up in (missing folders are left out). */
export async function realRoots (roots: string[]): Promise<string[]> {
  const out: string[] = []
  for (const r of roots) {
    try { out.push(await realpath(r)) } catch { /* a folder that is gone holds no sources */ }
  }
  return out
}

/** The image's own bytes from its source file, when a root still holds them unchanged. */
export async function readSource (roots: string[], source: string | null, sha: string): Promise<Buffer | undefined> {
  if (source === null || source === '') return undefined
  for (const root of roots) {
    try {
      const bytes = await readJobFile(root, source)
      if (sha256(bytes) === sha) return bytes
    } catch { /* not there, not readable, or outside the root: try the next */ }
  }
  return undefined
}

/** a preview at least `minSide` on its shorter side, or as large as the image itself, serves any model of that input */
export function previewServes (img: ReembedImage, minSide: number): boolean {
  const p = img.preview
  if (p === null) return false
  const side = Math.min(p.width, p.height)
  return side >= minSide || side >= Math.min(img.width, img.height)
}

/** The bytes to re-embed `img` from, and where they came from; undefined when only a weak preview or thumbnail is left. */
export async function reembedBytes (img: ReembedImage, roots: string[], minSide: number): Promise<{ bytes: Buffer, from: ReembedFrom } | undefined> {
  const src = await readSource(roots, img.source, img.sha256)
  if (src !== undefined) return { bytes: src, from: 'source' }
  if (img.original !== null) return { bytes: img.original, from: 'original' }
  if (img.preview !== null && previewServes(img, minSide)) return { bytes: img.preview.bytes, from: 'preview' }
  return undefined
}
