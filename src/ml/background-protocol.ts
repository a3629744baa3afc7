/** Messages between BackgroundImageEncoder (the server) and background-process.ts (its child). */
import type { PreprocessorConfig } from './model-folder.js'
import type { PrepareOptions } from './preprocess.js'
import type { PreviewOptions } from './preview.js'
import type { ExecutionProvider } from './types.js'

export interface BackgroundInit {
  type: 'init'
  /** nice value for every thread of the child */
  nice: number
  pre: PreprocessorConfig
  options: PrepareOptions
  visionPath: string
  provider: ExecutionProvider
  /** intra-op threads of the vision session */
  threads: number
  /** images per vision run (the worker pool's vision cap: batch 8 already runs at batch 32's speed per image) */
  maxBatch: number
}

/** decode, thumbnail and encode these images (and make their previews from the same decode, when asked) */
export interface BackgroundEmbed { type: 'embed', id: number, images: Uint8Array[], preview?: PreviewOptions }

export type ToBackground = BackgroundInit | BackgroundEmbed

export type EmbedItem =
  | { ok: true, embedding: Float32Array, width: number, height: number, thumbnail: Uint8Array, decodeMs: number, preview?: { bytes: Uint8Array, width: number, height: number } }
  | { ok: false, code: string | undefined, message: string }

export type FromBackground =
  | { type: 'ready', provider: ExecutionProvider }
  /** one per embed, items in the order sent; Buffers arrive as Uint8Array */
  | { type: 'embedded', id: number, items: EmbedItem[] }
