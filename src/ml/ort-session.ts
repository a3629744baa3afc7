/** ONNX Runtime session helpers shared by the encoder worker thread and the background ingest process. */
import { existsSync, statSync } from 'node:fs'
import type * as Ort from 'onnxruntime-node'
import { ort, ortSource } from './ort.js'
import type { ExecutionProvider, ExecutionProviderSetting } from './types.js'

/** Model files at least this large run without ONNX Runtime's CPU memory arena (see sessionOptions). */
export const ARENA_MAX_MODEL_BYTES = 64 * 2 ** 20

/**
 * @param modelBytes the .onnx file's size. ONNX Runtime's CPU arena keeps the largest activations a run
 *   ever needed: for the full-size vision tower (289 px, EfficientNet-B7) at batch 8 that held RSS at
 *   1,402 MiB after the run against 757 MiB without it (bench/report.md, align-base). Small models
 *   (align-mini) keep the arena, whose reuse is what their per-run cost is made of.
 */
export function sessionOptions (provider: ExecutionProvider, threads: number, modelBytes = 0): Ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [provider],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableCpuMemArena: modelBytes < ARENA_MAX_MODEL_BYTES
  }
}

/**
 * Bytes of a tower's weights: the .onnx file, plus its ONNX external data `<file>.data` where the
 * exporter wrote one (models/README.md), in which case the .onnx holds only the graph.
 */
export function modelBytes (file: string): number {
  const data = `${file}.data`
  return statSync(file).size + (existsSync(data) ? statSync(data).size : 0)
}

/** sessionOptions for the model file at `file`, sized from its weights. */
export function sessionOptionsFor (file: string, provider: ExecutionProvider, threads: number): Ort.InferenceSession.SessionOptions {
  return sessionOptions(provider, threads, modelBytes(file))
}

/** Pixels of vision input per run (batch × height × width) that the default vision batch is sized to. */
export const VISION_BATCH_PIXELS = 8 * 96 * 96

/**
 * Images per vision run for an input of height × width: 8 for align-mini's 48 px, 1 at ALIGN's 289 px.
 * At 289 px batch 8 ran slower per image than batch 1 in both bench runs here (raw session 1.03 against
 * 1.44 and 0.27 against 0.83 images/s: the activations no longer fit in cache), and its activations
 * took the ingest process to 1.4 GiB.
 */
export function visionBatchFor (height: number, width: number, max: number): number {
  return Math.max(1, Math.min(max, Math.floor(VISION_BATCH_PIXELS / (height * width))))
}

/** The providers a setting allows, in the order they are tried: 'cuda,cpu' → ['cuda', 'cpu']. */
export function providerList (setting: ExecutionProviderSetting): ExecutionProvider[] {
  return setting.split(',') as ExecutionProvider[]
}

/** What a host needs for the CUDA provider, said once wherever it fails to load. */
export const CUDA_NEEDS = 'onnxruntime-node with its CUDA provider libraries (scripts/install-cuda-provider.sh, then ORT_NODE_PREFIX=<that prefix>: ONNX Runtime 1.29.0) and, on the host, an NVIDIA driver with CUDA 13 and cuDNN 9 libraries on the loader path'

/** The error when a provider the setting names cannot be used, with what it needs and how to choose otherwise. */
export function providerError (provider: ExecutionProvider, setting: ExecutionProviderSetting, cause: unknown): Error {
  const why = cause instanceof Error ? cause.message : String(cause)
  const prefix = ortSource().prefix
  const from = prefix === undefined ? 'the project\'s dependency, a CPU build' : `ORT_NODE_PREFIX=${prefix}`
  const needs = provider === 'cuda' ? ` It needs ${CUDA_NEEDS}.` : ''
  return new Error(`EXECUTION_PROVIDER=${setting}: the ${provider} execution provider cannot be used (onnxruntime-node from ${from}): ${why}.${needs} EXECUTION_PROVIDER=cuda,cpu falls back to the CPU instead of failing; EXECUTION_PROVIDER=cpu uses the CPU only.`, { cause })
}

/**
 * Runs `create` with each provider the setting names, in order, until one works. A later provider is
 * only tried when the setting lists it (EXECUTION_PROVIDER=cuda,cpu), and `fallbackReason` then says
 * why the first failed, for the caller to log. `undo` releases whatever a failed attempt had created.
 * @throws providerError of the first provider when none works
 */
export async function openWithProviders<T> (setting: ExecutionProviderSetting, create: (p: ExecutionProvider) => Promise<T>, undo: () => Promise<void>): Promise<{ value: T, provider: ExecutionProvider, fallbackReason?: string }> {
  const [first, ...rest] = providerList(setting)
  try {
    return { value: await create(first!), provider: first! }
  } catch (err) {
    await undo()
    const failure = providerError(first!, setting, err)
    for (const p of rest) {
      try {
        return { value: await create(p), provider: p, fallbackReason: failure.message }
      } catch {
        await undo()
      }
    }
    throw failure
  }
}

/** One vision run over `batch` CHW images laid end to end; the first output. */
export async function runVisionSession (s: Ort.InferenceSession, pixels: Float32Array, batch: number, height: number, width: number): Promise<Ort.Tensor> {
  const input = new ort.Tensor('float32', pixels, [batch, 3, height, width])
  const out = await s.run({ [s.inputNames[0]!]: input })
  return out[s.outputNames[0]!]!
}
