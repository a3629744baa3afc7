import type { Preview, PreviewOptions } from './preview.js'

/** What a model folder's config.json says, in camelCase. See models/README.md. */
export interface ModelConfig {
  name: string
  modelId: string
  embeddingDim: number
  maxTextLength: number
  temperature: number
  promptTemplate: string
  usesTokenTypeIds: boolean
  license: string
  source: string
}

export type ExecutionProvider = 'cpu' | 'cuda'
/**
 * What EXECUTION_PROVIDER may say: one provider, used or the start fails, or 'cuda,cpu', which falls
 * back to the CPU (logged) when CUDA cannot be used. There is no silent fallback.
 */
export type ExecutionProviderSetting = ExecutionProvider | 'cuda,cpu'
export const EXECUTION_PROVIDER_SETTINGS = ['cpu', 'cuda', 'cuda,cpu'] as const satisfies readonly ExecutionProviderSetting[]

export interface Encoder {
  readonly config: ModelConfig
  /** the provider actually in use (the second of 'cuda,cpu' when CUDA could not be used) */
  readonly provider: ExecutionProvider
  /** the vision tower's input, px (a model switch needs source images at least this large) */
  readonly inputSize?: { height: number, width: number }
  /** L2-normalized text embeddings, one Float32Array(dim) per text */
  encodeTexts (texts: string[]): Promise<Float32Array[]>
  /** L2-normalized image embeddings from encoded image bytes (JPEG, PNG, WebP, GIF, AVIF, TIFF); rejects with UnsupportedImageError / PayloadTooLargeError */
  encodeImages (images: Buffer[]): Promise<Float32Array[]>
  /** decode + preprocess only; per-item errors are returned, not thrown */
  prepareImages (images: Buffer[]): Promise<Array<PreparedImage | Error>>
  /** encode already prepared images (batched, in worker threads) */
  encodePrepared (images: PreparedImage[]): Promise<Float32Array[]>
  /** what storing an image needs (L2-normalized embedding, size, thumbnail) in one call; per-item errors are returned, not thrown */
  embedForIngest (images: Buffer[], opts?: EmbedForIngestOptions): Promise<Array<EmbeddedImage | Error>>
  /** starts the process that serves `background` embedForIngest calls, if it is not running (an index job calls it as it starts) */
  warmBackground?: () => void
  close (): Promise<void>
}

export interface EmbedForIngestOptions {
  /** bulk work (index jobs): decode and encode in a child process at lower CPU priority, so searches keep their latency */
  background?: boolean
  /** also make each image's preview (ml/preview.ts) from the same decode */
  preview?: PreviewOptions
}

export interface EmbeddedImage {
  /** L2-normalized image embedding */
  embedding: Float32Array
  width: number
  height: number
  thumbnail: Buffer
  decodeMs: number
  /** when asked for (EmbedForIngestOptions.preview) and previews are on */
  preview?: Preview
}

export interface PreparedImage {
  /** CHW float32 pixel values exactly as the vision tower takes them */
  pixels: Float32Array
  /** size of the decoded, orientation-corrected image */
  width: number
  height: number
  /** small WebP for the UI */
  thumbnail: Buffer
  /** when asked for (PrepareOptions.preview) and previews are on */
  preview?: Preview
  /** time spent decoding + resizing, ms */
  decodeMs: number
}

export interface EncoderOptions {
  modelDir: string
  executionProvider: ExecutionProviderSetting
  /** worker threads running ONNX sessions (default 1) */
  workers?: number
  /** intra-op threads per ONNX session (default 1) */
  threads?: number
  /** largest decoded image accepted, in pixels (sharp limitInputPixels); default 100 MP */
  maxImagePixels?: number
  /** max items per ONNX run (default 32) */
  maxBatch?: number
  /** nice value (0–19) of the process that serves `background` embedForIngest calls (default DEFAULT_INDEX_JOB_NICE, src/core/limits.ts: 19) */
  backgroundNice?: number
  logger?: { info: (o: object, m?: string) => void, warn: (o: object, m?: string) => void }
}

export type { PreviewFormat } from './preview.js'
