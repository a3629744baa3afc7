/**
 * Messages between the worker pool (main thread) and onnx-worker.ts. Typed arrays travel
 * as transferred ArrayBuffers, never copied.
 */
import type { ExecutionProvider } from './types.js'

export interface InitMessage {
  type: 'init'
  visionPath: string
  textPath: string
  /** intra-op threads for each session */
  threads: number
  provider: ExecutionProvider
}

export interface VisionRunMessage {
  type: 'run'
  id: number
  tower: 'vision'
  batch: number
  /** [batch, 3, height, width] row-major */
  pixels: Float32Array
  height: number
  width: number
}

export interface TextRunMessage {
  type: 'run'
  id: number
  tower: 'text'
  batch: number
  length: number
  inputIds: BigInt64Array
  attentionMask: BigInt64Array
  tokenTypeIds?: BigInt64Array
}

export type ToWorker = InitMessage | VisionRunMessage | TextRunMessage

/** What a session takes and gives, as ONNX declares it (symbolic dims as strings). */
export interface SessionInfo {
  inputs: Array<{ name: string, type: string, shape: Array<number | string> }>
  outputs: Array<{ name: string, type: string, shape: Array<number | string> }>
}

export interface ReadyMessage {
  type: 'ready'
  /** the provider actually in use */
  provider: ExecutionProvider
  /** why the requested provider was not used, when it was not */
  fallbackReason?: string
  vision: SessionInfo
  text: SessionInfo
}

export interface ResultMessage {
  type: 'result'
  id: number
  /** [batch, dim] row-major */
  data: Float32Array
  dims: number[]
  /** wall time of session.run() in the worker, ms */
  runMs: number
}

export interface ErrorMessage {
  type: 'error'
  /** the run that failed; absent for an init failure */
  id?: number
  message: string
}

export type FromWorker = ReadyMessage | ResultMessage | ErrorMessage
