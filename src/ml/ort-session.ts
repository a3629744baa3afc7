/** ONNX Runtime session helpers shared by the encoder worker thread and the background ingest process. */
import ort from 'onnxruntime-node'
import type { ExecutionProvider } from './types.js'

export function sessionOptions (provider: ExecutionProvider, threads: number): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [provider],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all'
  }
}

/**
 * Runs `create` with the requested provider and, when that is not the CPU and fails, once more
 * with the CPU. `undo` releases whatever the failed attempt had created.
 */
export async function withCpuFallback<T> (provider: ExecutionProvider, create: (p: ExecutionProvider) => Promise<T>, undo: () => Promise<void>): Promise<{ value: T, provider: ExecutionProvider, fallbackReason?: string }> {
  try {
    return { value: await create(provider), provider }
  } catch (err) {
    if (provider === 'cpu') throw err
    await undo()
    return { value: await create('cpu'), provider: 'cpu', fallbackReason: `${provider} execution provider unavailable: ${(err as Error).message}` }
  }
}

/** One vision run over `batch` CHW images laid end to end; the first output. */
export async function runVisionSession (s: ort.InferenceSession, pixels: Float32Array, batch: number, height: number, width: number): Promise<ort.Tensor> {
  const input = new ort.Tensor('float32', pixels, [batch, 3, height, width])
  const out = await s.run({ [s.inputNames[0]!]: input })
  return out[s.outputNames[0]!]!
}
