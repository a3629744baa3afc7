/**
 * The model-folder contract (models/README.md): config.json, preprocessor_config.json, tokenizer.json,
 * text.onnx and vision.onnx, validated on load with a message that names the file and the field.
 */
import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import type { ModelConfig } from './types.js'

/** sharp's resize kernels that match the PIL resample codes a preprocessor_config.json may name. */
export type ResizeKernel = 'nearest' | 'linear' | 'cubic' | 'lanczos3'

/**
 * preprocessor_config.json (Hugging Face EfficientNetImageProcessor fields), in camelCase.
 * The final tensor is [3, cropSize.height, cropSize.width] when doCenterCrop, else [3, size.height, size.width].
 */
export interface PreprocessorConfig {
  doResize: boolean
  size: { height: number, width: number }
  /** PIL code as written in the file: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic */
  resample: number
  /** the sharp kernel for `resample` */
  kernel: ResizeKernel
  doCenterCrop: boolean
  cropSize: { height: number, width: number }
  doRescale: boolean
  rescaleFactor: number
  /** when true, rescale is x * factor - 1 */
  rescaleOffset: boolean
  doNormalize: boolean
  imageMean: [number, number, number]
  imageStd: [number, number, number]
  /** when true, pixels are divided by imageStd once more after normalization (as transformers does) */
  includeTop: boolean
  /** RGB the alpha channel is flattened onto; optional in the file, default white */
  background: [number, number, number]
  /** height and width of the tensor the vision tower takes */
  inputHeight: number
  inputWidth: number
}

/** A validated model folder: absolute file paths plus the parsed configs. reference.json is only checked for presence; see `loadReference`. */
export interface ModelFolder {
  dir: string
  visionPath: string
  textPath: string
  tokenizerPath: string
  referencePath: string
  config: ModelConfig
  preprocessor: PreprocessorConfig
}

/** A model folder that is missing a file or has a bad field. The message names the file and the field. */
export class ModelFolderError extends Error {
  constructor (readonly file: string, readonly field: string | undefined, detail: string) {
    super(`model folder: ${file}${field === undefined ? '' : ` field "${field}"`}: ${detail}`)
    this.name = 'ModelFolderError'
  }
}

const PIL_TO_KERNEL: Record<number, ResizeKernel> = { 0: 'nearest', 1: 'lanczos3', 2: 'linear', 3: 'cubic' }
const REQUIRED_FILES = ['vision.onnx', 'text.onnx', 'tokenizer.json', 'preprocessor_config.json', 'config.json', 'reference.json'] as const

type Json = Record<string, unknown>

/** Field readers that fail with the file and field named. */
function fields (file: string, obj: Json) {
  const fail = (key: string, want: string): never => {
    const got = obj[key] === undefined ? 'missing' : `got ${JSON.stringify(obj[key])}`
    throw new ModelFolderError(file, key, `must be ${want} (${got})`)
  }
  return {
    string (key: string): string {
      const v = obj[key]
      return typeof v === 'string' ? v : fail(key, 'a string')
    },
    boolean (key: string, fallback?: boolean): boolean {
      const v = obj[key]
      if (v === undefined && fallback !== undefined) return fallback
      return typeof v === 'boolean' ? v : fail(key, 'true or false')
    },
    positive (key: string): number {
      const v = obj[key]
      return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : fail(key, 'a positive number')
    },
    int (key: string): number {
      const v = obj[key]
      return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : fail(key, 'a positive integer')
    },
    size (key: string): { height: number, width: number } {
      const v = obj[key] as Json | undefined
      const ok = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x > 0
      if (typeof v === 'object' && v !== null && ok(v.height) && ok(v.width)) return { height: v.height, width: v.width }
      return fail(key, 'an object {height, width} of positive integers')
    },
    triple (key: string, fallback?: [number, number, number]): [number, number, number] {
      const v = obj[key]
      if (v === undefined && fallback !== undefined) return fallback
      if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
        return [v[0], v[1], v[2]] as [number, number, number]
      }
      return fail(key, 'an array of 3 numbers')
    }
  }
}

async function readJson (dir: string, file: string): Promise<Json> {
  let text: string
  try {
    text = await readFile(path.join(dir, file), 'utf8')
  } catch (err) {
    throw new ModelFolderError(file, undefined, `cannot read ${path.join(dir, file)}: ${(err as Error).message}`)
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new ModelFolderError(file, undefined, `invalid JSON: ${(err as Error).message}`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ModelFolderError(file, undefined, 'must hold a JSON object')
  return value as Json
}

/** Parses config.json (snake_case) into a ModelConfig. */
export function parseModelConfig (obj: Json, file = 'config.json'): ModelConfig {
  const f = fields(file, obj)
  const promptTemplate = f.string('prompt_template')
  if (!promptTemplate.includes('{}')) throw new ModelFolderError(file, 'prompt_template', `must contain "{}" where the label goes (got ${JSON.stringify(promptTemplate)})`)
  return {
    name: f.string('name'),
    modelId: f.string('model_id'),
    embeddingDim: f.int('embedding_dim'),
    maxTextLength: f.int('max_text_length'),
    temperature: f.positive('temperature'),
    promptTemplate,
    usesTokenTypeIds: f.boolean('uses_token_type_ids'),
    license: f.string('license'),
    source: f.string('source')
  }
}

/** Parses preprocessor_config.json (EfficientNetImageProcessor fields) into a PreprocessorConfig. */
export function parsePreprocessorConfig (obj: Json, file = 'preprocessor_config.json'): PreprocessorConfig {
  const f = fields(file, obj)
  const doResize = f.boolean('do_resize')
  // The vision tower has a fixed input size; without a resize, images of any size would reach it.
  if (!doResize) throw new ModelFolderError(file, 'do_resize', 'must be true: the vision tower takes a fixed input size')
  const size = f.size('size')
  const resample = obj.resample === undefined ? 2 : obj.resample
  const kernel = typeof resample === 'number' ? PIL_TO_KERNEL[resample] : undefined
  if (kernel === undefined) throw new ModelFolderError(file, 'resample', `must be a PIL code 0 (nearest), 1 (lanczos), 2 (bilinear) or 3 (bicubic) (got ${JSON.stringify(resample)})`)
  const doCenterCrop = f.boolean('do_center_crop')
  const cropSize = doCenterCrop ? f.size('crop_size') : (obj.crop_size === undefined ? size : f.size('crop_size'))
  if (doCenterCrop && (cropSize.height > size.height || cropSize.width > size.width)) {
    throw new ModelFolderError(file, 'crop_size', `${cropSize.width}×${cropSize.height} is larger than size ${size.width}×${size.height}`)
  }
  const doRescale = f.boolean('do_rescale')
  const doNormalize = f.boolean('do_normalize')
  const includeTop = f.boolean('include_top', false)
  const imageStd = doNormalize || includeTop ? f.triple('image_std') : f.triple('image_std', [1, 1, 1])
  if (imageStd.some((s) => s === 0)) throw new ModelFolderError(file, 'image_std', 'must not contain 0')
  const background = f.triple('background', [255, 255, 255])
  return {
    doResize,
    size,
    resample: resample as number,
    kernel,
    doCenterCrop,
    cropSize,
    doRescale,
    rescaleFactor: doRescale ? f.positive('rescale_factor') : 1,
    rescaleOffset: f.boolean('rescale_offset', false),
    doNormalize,
    imageMean: doNormalize ? f.triple('image_mean') : f.triple('image_mean', [0, 0, 0]),
    imageStd,
    includeTop,
    background,
    inputHeight: doCenterCrop ? cropSize.height : size.height,
    inputWidth: doCenterCrop ? cropSize.width : size.width
  }
}

/**
 * Reads and validates a model folder (see models/README.md): all six files must exist,
 * config.json and preprocessor_config.json must parse and carry every field.
 * Throws ModelFolderError naming the file and field.
 */
export async function loadModelFolder (dir: string): Promise<ModelFolder> {
  const abs = path.resolve(dir)
  for (const file of REQUIRED_FILES) {
    const st = await stat(path.join(abs, file)).catch(() => undefined)
    if (st === undefined || !st.isFile()) throw new ModelFolderError(file, undefined, `missing from ${abs}`)
    if (st.size === 0) throw new ModelFolderError(file, undefined, `is empty in ${abs}`)
  }
  const [config, preprocessor] = await Promise.all([
    readJson(abs, 'config.json').then((o) => parseModelConfig(o)),
    readJson(abs, 'preprocessor_config.json').then((o) => parsePreprocessorConfig(o))
  ])
  return {
    dir: abs,
    visionPath: path.join(abs, 'vision.onnx'),
    textPath: path.join(abs, 'text.onnx'),
    tokenizerPath: path.join(abs, 'tokenizer.json'),
    referencePath: path.join(abs, 'reference.json'),
    config,
    preprocessor
  }
}

/** Fills a config's prompt template, e.g. "an icon of {}" + "cat" → "an icon of cat". */
export function formatPrompt (config: Pick<ModelConfig, 'promptTemplate'>, label: string): string {
  return config.promptTemplate.replaceAll('{}', label)
}
