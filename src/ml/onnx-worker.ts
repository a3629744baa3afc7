/**
 * Worker thread that owns the two ONNX sessions. onnxruntime's run() is a synchronous native call,
 * so it lives here, off the event loop. Started by worker-pool.ts; speaks worker-protocol.ts.
 */
import { parentPort } from 'node:worker_threads'
import type * as Ort from 'onnxruntime-node'
import { ort } from './ort.js'
import { runVisionSession, sessionOptionsFor } from './ort-session.js'
import type { ErrorMessage, FromWorker, InitMessage, ReadyMessage, ResultMessage, SessionInfo, TextRunMessage, ToWorker, VisionRunMessage } from './worker-protocol.js'

const port = parentPort
if (port === null) throw new Error('onnx-worker.ts must run in a worker thread')

let vision: Ort.InferenceSession | undefined
let text: Ort.InferenceSession | undefined

function post (msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  try {
    port!.postMessage(msg, transfer)
  } catch {
    // An ArrayBuffer onnxruntime does not let us detach: send a copy instead.
    port!.postMessage(msg)
  }
}

function describe (session: Ort.InferenceSession): SessionInfo {
  const meta = (list: readonly Ort.InferenceSession.ValueMetadata[]) => list.map((m) => m.isTensor
    ? { name: m.name, type: m.type as string, shape: [...m.shape] }
    : { name: m.name, type: 'non-tensor', shape: [] })
  return { inputs: meta(session.inputMetadata), outputs: meta(session.outputMetadata) }
}

/**
 * Opens both sessions on the one provider the pool asks for. A failure is answered as an error:
 * the encoder (openWithProviders, ort-session.ts) decides whether EXECUTION_PROVIDER allows another.
 */
async function init (msg: InitMessage): Promise<void> {
  try {
    vision = await ort.InferenceSession.create(msg.visionPath, sessionOptionsFor(msg.visionPath, msg.provider, msg.threads))
    text = await ort.InferenceSession.create(msg.textPath, sessionOptionsFor(msg.textPath, msg.provider, msg.threads))
  } catch (err) {
    await vision?.release()
    vision = undefined
    throw err
  }
  const ready: ReadyMessage = { type: 'ready', provider: msg.provider, vision: describe(vision), text: describe(text) }
  post(ready)
}

async function runVision (msg: VisionRunMessage): Promise<Ort.Tensor> {
  return await runVisionSession(vision!, msg.pixels, msg.batch, msg.height, msg.width)
}

async function runText (msg: TextRunMessage): Promise<Ort.Tensor> {
  const s = text!
  const dims = [msg.batch, msg.length]
  const feeds: Record<string, Ort.Tensor> = {}
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
