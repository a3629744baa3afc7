/**
 * onnxruntime-node used directly, on the main thread, with the same session options as the
 * project's worker (src/ml/ort-session.ts): the baseline the encoder pipeline is compared with.
 * Also a one-node MatMul model, built here as protobuf bytes, to measure this machine's GFLOP/s.
 */
import ort from 'onnxruntime-node'
import type { TokenBatch } from '../../src/ml/index.js'
import { modelBytes, runVisionSession, sessionOptions } from '../../src/ml/ort-session.js'

export async function openRawSession (file: string | Uint8Array, threads: number): Promise<ort.InferenceSession> {
  // the service's options for this file, arena included (sized from the file, as src/ml does)
  const options = sessionOptions('cpu', threads, typeof file === 'string' ? modelBytes(file) : file.byteLength)
  return typeof file === 'string' ? await ort.InferenceSession.create(file, options) : await ort.InferenceSession.create(file, options)
}

/** one vision run on a pre-made [batch, 3, h, w] tensor */
export async function runVision (s: ort.InferenceSession, pixels: Float32Array, batch: number, h: number, w: number): Promise<void> {
  await runVisionSession(s, pixels, batch, h, w)
}

/** one text run on a pre-packed token batch */
export async function runText (s: ort.InferenceSession, b: TokenBatch): Promise<void> {
  const dims = [b.batch, b.length]
  const feeds: Record<string, ort.Tensor> = {}
  for (const name of s.inputNames) {
    if (name === 'input_ids') feeds[name] = new ort.Tensor('int64', b.inputIds, dims)
    else if (name === 'attention_mask') feeds[name] = new ort.Tensor('int64', b.attentionMask, dims)
    else feeds[name] = new ort.Tensor('int64', b.tokenTypeIds ?? new BigInt64Array(b.batch * b.length), dims)
  }
  await s.run(feeds)
}

// --- a minimal ONNX protobuf writer: just enough for Y = MatMul(A, B) ---

function varint (n: number): number[] {
  const out: number[] = []
  while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) }
  out.push(n)
  return out
}
const field = (no: number, wire: number): number[] => varint((no << 3) | wire)
const vint = (no: number, v: number): number[] => [...field(no, 0), ...varint(v)]
const bytes = (no: number, b: number[]): number[] => [...field(no, 2), ...varint(b.length), ...b]
const str = (no: number, s: string): number[] => bytes(no, [...Buffer.from(s, 'utf8')])

/** ValueInfoProto of a float tensor with fixed dims */
function valueInfo (name: string, dims: number[]): number[] {
  const shape = dims.flatMap((d) => bytes(1, vint(1, d))) // TensorShapeProto.dim { dim_value }
  const tensorType = [...vint(1, 1), ...bytes(2, shape)] // elem_type FLOAT, shape
  return [...str(1, name), ...bytes(2, bytes(1, tensorType))] // name, type { tensor_type }
}

/** An ONNX model (opset 13) computing Y[m,n] = A[m,k] · B[k,n]. */
export function matMulModel (m: number, k: number, n: number): Uint8Array {
  const node = [...str(1, 'A'), ...str(1, 'B'), ...str(2, 'Y'), ...str(3, 'mm'), ...str(4, 'MatMul')]
  const graph = [...bytes(1, node), ...str(2, 'matmul'), ...bytes(11, valueInfo('A', [m, k])), ...bytes(11, valueInfo('B', [k, n])), ...bytes(12, valueInfo('Y', [m, n]))]
  const model = [...vint(1, 7), ...str(2, 'align-search-bench'), ...bytes(7, graph), ...bytes(8, [...str(1, ''), ...vint(2, 13)])]
  return Uint8Array.from(model)
}

/** float32 GFLOP/s of onnxruntime's MatMul (2·m·k·n flops per run) on `threads` intra-op threads. */
export async function matMulGflops (threads: number, size = 512, minMs = 1500): Promise<number> {
  const s = await openRawSession(matMulModel(size, size, size), threads)
  try {
    const a = new Float32Array(size * size).map((_, i) => (i % 7) * 0.01)
    const b = new Float32Array(size * size).map((_, i) => (i % 5) * 0.01)
    const feeds = { A: new ort.Tensor('float32', a, [size, size]), B: new ort.Tensor('float32', b, [size, size]) }
    for (let i = 0; i < 3; i++) await s.run(feeds)
    let iters = 0
    const t0 = performance.now()
    while (performance.now() - t0 < minMs || iters < 5) { await s.run(feeds); iters++ }
    const sec = (performance.now() - t0) / 1000
    return (2 * size ** 3 * iters) / sec / 1e9
  } finally {
    await s.release()
  }
}
