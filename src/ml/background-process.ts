/**
 * Entry of the background ingest process (see background-encoder.ts). It lowers its own scheduling
 * priority, loads the vision tower, and for each batch it is sent decodes the images a few at a
 * time, encodes them in runs of up to maxBatch and answers with L2-normalized embeddings.
 */
import { readdirSync } from 'node:fs'
import os from 'node:os'
import { setImmediate as yieldTick } from 'node:timers/promises'
import type * as Ort from 'onnxruntime-node'
import { ort } from './ort.js'
import type { BackgroundEmbed, BackgroundInit, EmbedItem, FromBackground, ToBackground } from './background-protocol.js'
import { createLimiter, decodeConcurrency } from './decode-limit.js'
import { runVisionSession, sessionOptionsFor } from './ort-session.js'
import { prepareAhead } from './prepare-ahead.js'
import { prepareImage } from './preprocess.js'
import type { PreparedImage } from './types.js'
import { l2normalizeInPlace } from '../core/vector-math.js'

/**
 * Linux keeps a nice value per thread, and a new thread inherits its creator's. Every thread that
 * exists now (V8's, and libuv's if the loader started them) is lowered; the libuv, libvips and
 * onnxruntime threads started later inherit the value. Elsewhere only the calling thread is set.
 */
function lowerPriority (nice: number): void {
  let tids = [0]
  try {
    tids = readdirSync('/proc/self/task').map(Number)
  } catch { /* not Linux */ }
  for (const tid of tids) {
    try {
      os.setPriority(tid, nice)
    } catch { /* the thread has exited, or the platform refuses: the work still gets done */ }
  }
}

const send = (msg: FromBackground): void => { process.send?.(msg) }
const slot = createLimiter(decodeConcurrency())
let setup: { init: BackgroundInit, vision: Promise<Ort.InferenceSession> } | undefined
let firstDone = false

/** The provider is the one the server's own sessions opened on (EncoderOptions.executionProvider, resolved there). */
async function openVision (init: BackgroundInit): Promise<Ort.InferenceSession> {
  const session = await ort.InferenceSession.create(init.visionPath, sessionOptionsFor(init.visionPath, init.provider, init.threads))
  send({ type: 'ready', provider: init.provider })
  return session
}

const failure = (err: unknown): EmbedItem => {
  const e = err instanceof Error ? err : new Error(String(err))
  return { ok: false, code: (e as { code?: string }).code, message: e.message }
}

async function encode (session: Ort.InferenceSession, images: PreparedImage[], init: BackgroundInit): Promise<Float32Array[]> {
  const out: Float32Array[] = []
  const per = 3 * init.pre.inputHeight * init.pre.inputWidth
  for (let start = 0; start < images.length; start += init.maxBatch) {
    // run() blocks this thread; short runs with a yield between them let finished decodes hand their lane on
    if (start > 0) await yieldTick()
    const run = images.slice(start, start + init.maxBatch)
    let pixels = run[0]!.pixels
    if (run.length > 1) {
      pixels = new Float32Array(run.length * per)
      run.forEach((im, i) => pixels.set(im.pixels, i * per))
    }
    const tensor = await runVisionSession(session, pixels, run.length, init.pre.inputHeight, init.pre.inputWidth)
    const data = tensor.data as Float32Array
    const dim = data.length / run.length
    for (let i = 0; i < run.length; i++) out.push(l2normalizeInPlace(data.slice(i * dim, (i + 1) * dim)))
  }
  return out
}

async function prepareOne (bytes: Uint8Array, init: BackgroundInit, options: BackgroundInit['options']): Promise<PreparedImage | EmbedItem> {
  const prepared = await slot(async () => {
    try {
      return await prepareImage(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), init.pre, options)
    } catch (err) {
      return failure(err)
    }
  })
  // libvips starts its own threads at the first decode; lower them too, in case one came from a thread set before init
  if (!firstDone) { firstDone = true; lowerPriority(init.nice) }
  return prepared
}

async function encodeWindow (prepared: Array<PreparedImage | EmbedItem>, init: BackgroundInit, vision: Promise<Ort.InferenceSession>): Promise<EmbedItem[]> {
  const good = prepared.filter((p): p is PreparedImage => !('ok' in p))
  let vectors: Float32Array[]
  try {
    vectors = good.length === 0 ? [] : await encode(await vision, good, init)
  } catch (err) {
    const f = failure(err)
    return prepared.map((p) => 'ok' in p ? p : f)
  }
  let k = 0
  return prepared.map((p): EmbedItem => 'ok' in p
    ? p
    : { ok: true, embedding: vectors[k++]!, width: p.width, height: p.height, thumbnail: p.thumbnail, decodeMs: p.decodeMs, ...(p.preview === undefined ? {} : { preview: p.preview }) })
}

/** A window of images decodes while the one before it runs: at least one vision run, and one image per decode lane. */
async function embed ({ id, images, preview }: BackgroundEmbed): Promise<void> {
  const { init, vision } = setup!
  const options = preview === undefined ? init.options : { ...init.options, preview }
  const size = Math.max(init.maxBatch, decodeConcurrency())
  const items = await prepareAhead(images, size, async (bytes) => await prepareOne(bytes, init, options), async (prepared) => await encodeWindow(prepared, init, vision))
  send({ type: 'embedded', id, items })
}

process.on('message', (msg: ToBackground) => {
  if (msg.type === 'init') {
    lowerPriority(msg.nice)
    const vision = openVision(msg)
    vision.catch(() => {}) // reported to each batch that awaits it
    setup = { init: msg, vision }
  } else {
    void embed(msg)
  }
})
// the server went away (closed, or crashed): nothing is left to do
process.on('disconnect', () => process.exit(0))
