/**
 * Worker thread that owns the two ONNX sessions. onnxruntime's run() is a synchronous native call,
 * so it lives here, off the event loop. Started by worker-pool.ts; speaks worker-protocol.ts.
 */
import { parentPort } from 'node:worker_threads'
import ort from 'onnxruntime-node'
import { runVisionSession, sessionOptions, withCpuFallback } from './ort-session.js'
import type { ExecutionProvider } from './types.js'
import type { ErrorMessage, FromWorker, InitMessage, ReadyMessage, ResultMessage, SessionInfo, TextRunMessage, ToWorker, VisionRunMessage } from './worker-protocol.js'

const port = parentPort
if (port === null) throw new Error('onnx-worker.ts must run in a worker thread')

let vision: ort.InferenceSession | undefined
let text: ort.InferenceSession | undefined

function post (msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  try {
    port!.postMessage(msg, transfer)
  } catch {
    // An ArrayBuffer onnxruntime does not let us detach: send a copy instead.
    port!.postMessage(msg)
  }
}

function describe (session: ort.InferenceSession): SessionInfo {
  const meta = (list: readonly ort.InferenceSession.ValueMetadata[]) => list.map((m) => m.isTensor
    ? { name: m.name, type: m.type as string, shape: [...m.shape] }
    : { name: m.name, type: 'non-tensor', shape: [] })
  return { inputs: meta(session.inputMetadata), outputs: meta(session.outputMetadata) }
}

async function createSessions (msg: InitMessage, provider: ExecutionProvider): Promise<void> {
  const options = sessionOptions(provider, msg.threads)
  vision = await ort.InferenceSession.create(msg.visionPath, options)
  text = await ort.InferenceSession.create(msg.textPath, options)
}

async function init (msg: InitMessage): Promise<void> {
  const { provider, fallbackReason } = await withCpuFallback(msg.provider, async (p) => await createSessions(msg, p), async () => {
    await vision?.release()
    await text?.release()
    vision = undefined
    text = undefined
  })
  const ready: ReadyMessage = { type: 'ready', provider, vision: describe(vision!), text: describe(text!) }
  if (fallbackReason !== undefined) ready.fallbackReason = fallbackReason
  post(ready)
}

async function runVision (msg: VisionRunMessage): Promise<ort.Tensor> {
  return await runVisionSession(vision!, msg.pixels, msg.batch, msg.height, msg.width)
}

async function runText (msg: TextRunMessage): Promise<ort.Tensor> {
  const s = text!
  const dims = [msg.batch, msg.length]
  const feeds: Record<string, ort.Tensor> = {}
  for (const name of s.inputNames) {
    if (name === 'input_ids') feeds[name] = new ort.Tensor('int64', msg.inputIds, dims)
    else if (name === 'attention_mask') feeds[name] = new ort.Tensor('int64', msg.attentionMask, dims)
    else if (name === 'token_type_ids') feeds[name] = new ort.Tensor('int64', msg.tokenTypeIds ?? new BigInt64Array(msg.batch * msg.length), dims)
    else throw new Error(`text.onnx takes an input "${name}" this runtime does not know (expected input_ids, attention_mask, token_type_ids)`)
  }
  const out = await s.run(feeds)
  return out[s.outputNames[0]!]!
}

async function run (msg: VisionRunMessage | TextRunMessage): Promise<void> {
  const t0 = performance.now()
  const tensor = msg.tower === 'vision' ? await runVision(msg) : await runText(msg)
  const runMs = performance.now() - t0
  if (tensor.type !== 'float32') throw new Error(`${msg.tower}.onnx output is ${tensor.type}, expected float32`)
  const data = tensor.data as Float32Array
  const result: ResultMessage = { type: 'result', id: msg.id, data, dims: [...tensor.dims], runMs }
  const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength
  post(result, whole ? [data.buffer as ArrayBuffer] : [])
}

port.on('message', (msg: ToWorker) => {
  const job = msg.type === 'init' ? init(msg) : run(msg)
  job.catch((err: unknown) => {
    const reply: ErrorMessage = { type: 'error', message: err instanceof Error ? err.message : String(err) }
    if (msg.type === 'run') reply.id = msg.id
    post(reply)
  })
})
