/**
 * reference.json, the exporter's own outputs for a few texts and images: what the parity tests and
 * `tools/` compare the ONNX towers against.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { ModelFolderError } from './model-folder.js'

/** One reference text: its token ids and the raw (unnormalized) text tower output. */
export interface ReferenceText {
  text: string
  inputIds: number[]
  textEmbeds: Float32Array
}

/** One reference image: PNG bytes at the model's input size, the raw image tower output, optionally the exact input tensor. */
export interface ReferenceImage {
  name: string
  png: Buffer
  imageEmbeds: Float32Array
  /** flattened CHW pixel_values the exporter fed to the tower, when it wrote them */
  pixelValues?: Float32Array
}

/** reference.json, parsed: what the exporter's own framework computed, for parity checks. */
export interface ReferenceData {
  /** largest accepted absolute difference per embedding component */
  tolerance: number
  texts: ReferenceText[]
  images: ReferenceImage[]
}

function numbers (file: string, field: string, v: unknown): Float32Array {
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number')) {
    throw new ModelFolderError(file, field, 'must be a non-empty array of numbers')
  }
  return Float32Array.from(v as number[])
}

/**
 * Reads `<dir>/reference.json`: `{tolerance, texts:[{text, input_ids, text_embeds}], images:[{name, png_base64, image_embeds, pixel_values?}], pixel_values?}`.
 * A top-level `pixel_values` (one flattened CHW array per image) is accepted as well as a per-image one.
 */
export async function loadReference (dir: string): Promise<ReferenceData> {
  const file = 'reference.json'
  let raw: Record<string, unknown>
  try {
    raw = JSON.parse(await readFile(path.join(dir, file), 'utf8')) as Record<string, unknown>
  } catch (err) {
    throw new ModelFolderError(file, undefined, `cannot read: ${(err as Error).message}`)
  }
  const tolerance = raw.tolerance
  if (typeof tolerance !== 'number' || !(tolerance > 0)) throw new ModelFolderError(file, 'tolerance', 'must be a positive number')
  if (!Array.isArray(raw.texts)) throw new ModelFolderError(file, 'texts', 'must be an array')
  if (!Array.isArray(raw.images)) throw new ModelFolderError(file, 'images', 'must be an array')
  const topPixels = Array.isArray(raw.pixel_values) ? raw.pixel_values as unknown[] : undefined
  const texts = (raw.texts as Array<Record<string, unknown>>).map((t, i) => {
    if (typeof t.text !== 'string') throw new ModelFolderError(file, `texts[${i}].text`, 'must be a string')
    const ids = t.input_ids
    if (!Array.isArray(ids) || !ids.every((x) => Number.isInteger(x))) throw new ModelFolderError(file, `texts[${i}].input_ids`, 'must be an array of integers')
    return { text: t.text, inputIds: ids as number[], textEmbeds: numbers(file, `texts[${i}].text_embeds`, t.text_embeds) }
  })
  const images = (raw.images as Array<Record<string, unknown>>).map((im, i) => {
    if (typeof im.name !== 'string') throw new ModelFolderError(file, `images[${i}].name`, 'must be a string')
    if (typeof im.png_base64 !== 'string') throw new ModelFolderError(file, `images[${i}].png_base64`, 'must be a base64 string')
    const out: ReferenceImage = { name: im.name, png: Buffer.from(im.png_base64, 'base64'), imageEmbeds: numbers(file, `images[${i}].image_embeds`, im.image_embeds) }
    const px = im.pixel_values ?? topPixels?.[i]
    if (px !== undefined) out.pixelValues = numbers(file, `images[${i}].pixel_values`, px)
    return out
  })
  return { tolerance, texts, images }
}
