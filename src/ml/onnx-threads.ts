/**
 * The ONNX worker threads' lifecycle: start one (under tsx, through a loader bootstrap), load both
 * sessions in it, send it one run at a time and match its reply, and notice when it dies. What to
 * run, and when, is the scheduler's business (worker-pool.ts).
 */
import { Worker } from 'node:worker_threads'
import type { FromWorker, InitMessage, ReadyMessage, TextRunMessage, VisionRunMessage } from './worker-protocol.js'

export interface ThreadLogger {
  warn: (o: object, m?: string) => void
}

/** What one run returns: the outputs of the batch, flat, with their shape and the session's wall time. */
export interface RunReply { data: Float32Array, dims: number[], runMs: number }

/**
 * How to start onnx-worker in a thread. Compiled to .js (dist/, what production runs) the file runs
 * directly. Under tsx (the tests) the source is .ts, and Node 20 does not apply an inherited
 * `--import tsx` to a worker's entry file, so a tiny eval'd bootstrap registers tsx's loader inside
 * the worker and then imports the .ts file.
 */
function spawnWorker (): Worker {
  const self = import.meta.url
  if (self.endsWith('.ts')) {
    const tsxApi = import.meta.resolve('tsx/esm/api')
    const entry = new URL('./onnx-worker.ts', self).href
    const code = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}) })`
    return new Worker(code, { eval: true })
  }
  return new Worker(new URL('./onnx-worker.js', self))
}

/** One worker thread holding both sessions; at most one run in flight. */
export class OnnxThread {
  private inflight: { id: number, resolve: (r: RunReply) => void, reject: (e: Error) => void } | undefined
  private exited = false

  private constructor (private readonly worker: Worker, logger: ThreadLogger | undefined, onExit: (thread: OnnxThread, code: number) => void) {
    worker.on('message', (msg: FromWorker) => {
      const run = this.inflight
      if (msg.type === 'ready' || run === undefined || msg.id !== run.id) return
      this.inflight = undefined
      if (msg.type === 'error') run.reject(new Error(msg.message))
      else run.resolve({ data: msg.data, dims: msg.dims, runMs: msg.runMs })
    })
    worker.on('error', (err) => { logger?.warn({ err }, 'ONNX worker crashed') })
    worker.on('exit', (code) => {
      this.exited = true
      // a worker that dies takes its in-flight run with it
      this.inflight?.reject(new Error(`ONNX worker exited unexpectedly (code ${code})`))
      this.inflight = undefined
      onExit(this, code)
    })
  }

  /** Starts `n` threads and loads both sessions in each; rejects (stopping them all) if any fails. */
  static async startAll (n: number, init: InitMessage, logger: ThreadLogger | undefined, onExit: (thread: OnnxThread, code: number) => void): Promise<{ threads: OnnxThread[], ready: ReadyMessage }> {
    const workers = Array.from({ length: n }, () => spawnWorker())
    try {
      const readies = await Promise.all(workers.map(async (w) => await initWorker(w, init)))
      return { threads: workers.map((w) => new OnnxThread(w, logger, onExit)), ready: readies[0]! }
    } catch (err) {
      await Promise.all(workers.map(async (w) => await w.terminate()))
      throw err
    }
  }

  get busy (): boolean {
    return this.inflight !== undefined
  }

  /** Sends one run (its buffers transferred, not copied) and resolves with the reply. */
  async run (msg: VisionRunMessage | TextRunMessage, transfer: ArrayBuffer[]): Promise<RunReply> {
    if (this.exited) throw new Error('the ONNX worker has exited')
    if (this.inflight !== undefined) throw new Error('the ONNX worker is busy')
    return await new Promise<RunReply>((resolve, reject) => {
      this.inflight = { id: msg.id, resolve, reject }
      this.worker.postMessage(msg, transfer)
    })
  }

  /** Stops the thread; a run in flight rejects with `reason`. */
  async terminate (reason: Error): Promise<void> {
    this.inflight?.reject(reason)
    this.inflight = undefined
    await this.worker.terminate()
  }
}

async function initWorker (worker: Worker, msg: InitMessage): Promise<ReadyMessage> {
  return await new Promise<ReadyMessage>((resolve, reject) => {
    const cleanup = (): void => {
      worker.off('message', onMessage)
      worker.off('error', onError)
      worker.off('exit', onExit)
    }
    const onMessage = (m: FromWorker): void => {
      if (m.type === 'ready') { cleanup(); resolve(m) } else if (m.type === 'error' && m.id === undefined) { cleanup(); reject(new Error(`loading the ONNX models failed: ${m.message}`)) }
    }
    const onError = (err: Error): void => { cleanup(); reject(new Error(`the ONNX worker failed to start: ${err.message}`)) }
    const onExit = (code: number): void => { cleanup(); reject(new Error(`the ONNX worker exited during start (code ${code})`)) }
    worker.on('message', onMessage)
    worker.on('error', onError)
    worker.on('exit', onExit)
    worker.postMessage(msg)
  })
}
