/**
 * The encoder: a model folder's tokenizer, preprocessing and ONNX towers (in worker threads, with a
 * background process for index jobs) behind the Encoder interface the services use. Embeddings come
 * out L2-normalized.
 */
import type { ModelFolder } from './model-folder.js'
import { loadModelFolder, ModelFolderError } from './model-folder.js'
import { prepareImage } from './preprocess.js'
import type { PreviewOptions } from './preview.js'
import { BackgroundImageEncoder, DEFAULT_BACKGROUND_NICE } from './background-encoder.js'
import { createLimiter, decodeConcurrency } from './decode-limit.js'
import { embedPrepared } from './embed-prepared.js'
import { TextTokenizer } from './tokenize.js'
import type { EmbeddedImage, EmbedForIngestOptions, Encoder, EncoderOptions, ExecutionProvider, ModelConfig, PreparedImage } from './types.js'
import { l2normalizeInPlace } from '../core/vector-math.js'
import { openWithProviders, visionBatchFor } from './ort-session.js'
import type { OnnxRunEvent, Tower, TowerStats } from './worker-pool.js'
import { DEFAULT_MAX_BATCH, DEFAULT_MAX_VISION_BATCH, WorkerPool } from './worker-pool.js'

/** Process-wide, so that two encoders (tests, benchmarks) or concurrent calls never exceed it together. */
const decodeSlot = createLimiter(decodeConcurrency())

/** The Encoder plus what parity checks and benchmarks need. */
export interface AlignEncoder extends Encoder {
  readonly folder: ModelFolder
  readonly tokenizer: TextTokenizer
  /** live ONNX worker threads (0 after close) */
  readonly workers: number
  /** raw text tower outputs (not normalized), as reference.json stores them */
  encodeTextsRaw: (texts: string[]) => Promise<Float32Array[]>
  /** raw image tower outputs (not normalized) for prepared images */
  encodePreparedRaw: (images: PreparedImage[]) => Promise<Float32Array[]>
  /** raw image tower outputs for CHW tensors already in the tower's input form (e.g. reference.json pixel_values) */
  runVisionRaw: (pixels: Float32Array[]) => Promise<Float32Array[]>
  /** cumulative ONNX runs per tower: batches, items, run time */
  stats: () => Record<Tower, TowerStats>
  /** pid of the background ingest process while one runs (started by the first background embedForIngest) */
  backgroundPid: () => number | undefined
}

/** EncoderOptions plus an optional per-run hook (benchmarks, metrics). */
export interface AlignEncoderOptions extends EncoderOptions {
  onBatch?: (e: OnnxRunEvent) => void
}

function fixedDim (shape: Array<number | string> | undefined, index: number): number | undefined {
  const d = shape?.[index]
  return typeof d === 'number' && d > 0 ? d : undefined
}

/** Refuses a model folder whose ONNX files disagree with its configs, naming what differs. */
function checkSessions (pool: WorkerPool, folder: ModelFolder): void {
  const { config, preprocessor: pre } = folder
  const v = pool.sessions.vision
  const vin = v.inputs[0]
  if (v.inputs.length !== 1 || vin === undefined) throw new ModelFolderError('vision.onnx', undefined, `must take exactly one input (pixel_values), takes ${v.inputs.map((i) => i.name).join(', ')}`)
  if (vin.type !== 'float32') throw new ModelFolderError('vision.onnx', undefined, `input ${vin.name} must be float32, is ${vin.type}`)
  const [c, h, w] = [fixedDim(vin.shape, 1), fixedDim(vin.shape, 2), fixedDim(vin.shape, 3)]
  if ((c !== undefined && c !== 3) || (h !== undefined && h !== pre.inputHeight) || (w !== undefined && w !== pre.inputWidth)) {
    throw new ModelFolderError('preprocessor_config.json', pre.doCenterCrop ? 'crop_size' : 'size', `gives [3, ${pre.inputHeight}, ${pre.inputWidth}] but vision.onnx takes [${vin.shape.join(', ')}]`)
  }
  const names = pool.sessions.text.inputs.map((i) => i.name)
  for (const need of ['input_ids', 'attention_mask']) {
    if (!names.includes(need)) throw new ModelFolderError('text.onnx', undefined, `must take an input "${need}" (takes ${names.join(', ')})`)
  }
  if (names.includes('token_type_ids') !== config.usesTokenTypeIds) {
    throw new ModelFolderError('config.json', 'uses_token_type_ids', `is ${String(config.usesTokenTypeIds)} but text.onnx ${names.includes('token_type_ids') ? 'takes' : 'does not take'} token_type_ids`)
  }
  for (const [file, info] of [['vision.onnx', v], ['text.onnx', pool.sessions.text]] as const) {
    const dim = fixedDim(info.outputs[0]?.shape, 1)
    if (dim !== undefined && dim !== config.embeddingDim) {
      throw new ModelFolderError('config.json', 'embedding_dim', `is ${config.embeddingDim} but ${file} outputs ${dim}`)
    }
  }
}

/**
 * Loads a model folder and starts its ONNX sessions in worker threads.
 * Outputs of encodeTexts / encodeImages / encodePrepared are L2-normalized.
 *
 * @param opts.workers worker threads (default 1); opts.threads intra-op threads each (default 1);
 *   opts.maxBatch items per ONNX run (default 32); opts.maxImagePixels decode limit (default 100 MP);
 *   opts.executionProvider 'cpu', 'cuda' (fails when CUDA cannot be used) or 'cuda,cpu' (then runs on the CPU, with a warning).
 * @throws ModelFolderError when the folder is incomplete or its files disagree
 */
export async function loadEncoder (opts: AlignEncoderOptions): Promise<AlignEncoder> {
  const folder = await loadModelFolder(opts.modelDir)
  const { config, preprocessor } = folder
  const tokenizer = TextTokenizer.fromFile(folder.tokenizerPath, config.maxTextLength, config.usesTokenTypeIds)
  // images per vision run from the input size: 8 for small inputs, 1 at 289 px (ort-session.ts visionBatchFor)
  const visionBatch = visionBatchFor(preprocessor.inputHeight, preprocessor.inputWidth, Math.min(opts.maxBatch ?? DEFAULT_MAX_BATCH, DEFAULT_MAX_VISION_BATCH))
  // A provider that cannot be used fails here, at start, with what it needs; the CPU is only tried
  // after CUDA when the setting says so ('cuda,cpu'), and then the reason is logged.
  const opened = await openWithProviders(opts.executionProvider, async (provider) => await WorkerPool.start({
    visionPath: folder.visionPath,
    textPath: folder.textPath,
    provider,
    workers: opts.workers,
    threads: opts.threads,
    maxBatch: opts.maxBatch,
    maxVisionBatch: visionBatch,
    inputHeight: preprocessor.inputHeight,
    inputWidth: preprocessor.inputWidth,
    usesTokenTypeIds: config.usesTokenTypeIds,
    padId: tokenizer.padId,
    logger: opts.logger,
    onBatch: opts.onBatch
  }), async () => {})
  if (opened.fallbackReason !== undefined) {
    opts.logger?.warn({ requested: opts.executionProvider, provider: opened.provider, reason: opened.fallbackReason }, `EXECUTION_PROVIDER=${opts.executionProvider}: running on ${opened.provider}`)
  }
  const pool = opened.value
  try {
    checkSessions(pool, folder)
  } catch (err) {
    await pool.close()
    throw err
  }
  const prepareOpts = { maxImagePixels: opts.maxImagePixels }
  const normalized = (vs: Float32Array[]): Float32Array[] => vs.map(l2normalizeInPlace)

  const encodeTextsRaw = async (texts: string[]): Promise<Float32Array[]> => {
    if (texts.length === 0) return []
    return await pool.runText(await tokenizer.encode(texts))
  }
  const encodePreparedRaw = async (images: PreparedImage[]): Promise<Float32Array[]> => {
    if (images.length === 0) return []
    return await pool.runVision(images.map((im) => im.pixels))
  }
  const prepareImages = async (images: Buffer[], preview?: PreviewOptions): Promise<Array<PreparedImage | Error>> =>
    await Promise.all(images.map(async (bytes) => await decodeSlot(async () => {
      try {
        return await prepareImage(bytes, preprocessor, preview === undefined ? prepareOpts : { ...prepareOpts, preview })
      } catch (err) {
        return err instanceof Error ? err : new Error(String(err))
      }
    })))
  const background = new BackgroundImageEncoder({
    init: {
      nice: opts.backgroundNice ?? DEFAULT_BACKGROUND_NICE,
      pre: preprocessor,
      options: prepareOpts,
      visionPath: folder.visionPath,
      provider: pool.provider,
      threads: opts.threads ?? 1,
      maxBatch: visionBatch
    },
    logger: opts.logger
  })
  const embedForIngest = async (images: Buffer[], how: EmbedForIngestOptions = {}): Promise<Array<EmbeddedImage | Error>> => {
    if (how.background === true) return await background.embed(images, how.preview)
    return await embedPrepared(await prepareImages(images, how.preview), async (good) => normalized(await encodePreparedRaw(good)))
  }

  const encoder: AlignEncoder = {
    config: config satisfies ModelConfig,
    provider: pool.provider satisfies ExecutionProvider,
    inputSize: { height: preprocessor.inputHeight, width: preprocessor.inputWidth },
    folder,
    tokenizer,
    get workers () { return pool.size },
    encodeTextsRaw,
    encodePreparedRaw,
    runVisionRaw: async (pixels) => pixels.length === 0 ? [] : await pool.runVision(pixels),
    stats: () => pool.stats(),
    encodeTexts: async (texts) => normalized(await encodeTextsRaw(texts)),
    prepareImages: async (images) => await prepareImages(images),
    encodePrepared: async (images) => normalized(await encodePreparedRaw(images)),
    async encodeImages (images) {
      const prepared = await prepareImages(images)
      const failed = prepared.find((p): p is Error => p instanceof Error)
      if (failed !== undefined) throw failed
      return normalized(await encodePreparedRaw(prepared as PreparedImage[]))
    },
    embedForIngest,
    warmBackground: () => { background.warm() },
    backgroundPid: () => background.pid,
    close: async () => { await Promise.all([pool.close(), background.close()]) }
  }
  return encoder
}
