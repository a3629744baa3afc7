/**
 * The scheduler over the ONNX worker threads (onnx-threads.ts): a queue per tower, calls made in the
 * same tick coalesced into one run, texts ahead of images (a search waits; indexing can), and each
 * run's outputs split back to its callers. The encoder (encoder.ts) is its one user.
 */
import { OnnxThread } from './onnx-threads.js'
import type { TokenizedText } from './tokenize.js'
import { packTokens } from './tokenize.js'
import type { ExecutionProvider } from './types.js'
import type { ReadyMessage, SessionInfo, TextRunMessage, VisionRunMessage } from './worker-protocol.js'

export type Tower = 'vision' | 'text'

export const DEFAULT_MAX_VISION_BATCH = 8
/** items per ONNX run unless configured */
export const DEFAULT_MAX_BATCH = 32
/** how long queued images may be passed over for texts before they go first */
export const VISION_MAX_WAIT_MS = 50

export interface PoolLogger {
  info: (o: object, m?: string) => void
  warn: (o: object, m?: string) => void
}

/** One ONNX run, as reported to `onBatch` (for benchmarks and metrics). */
export interface OnnxRunEvent {
  tower: Tower
  /** items in this run */
  size: number
  /** session.run() wall time in the worker, ms */
  runMs: number
  /** how long the oldest item waited in the queue before dispatch, ms */
  queueMs: number
}

export interface TowerStats {
  batches: number
  items: number
  /** total session.run() time, ms */
  runMs: number
  largestBatch: number
}

export interface WorkerPoolOptions {
  visionPath: string
  textPath: string
  provider: ExecutionProvider
  /** worker threads, each holding both sessions (default 1) */
  workers?: number
  /** intra-op threads per session (default 1) */
  threads?: number
  /** most items per ONNX run (default 32) */
  maxBatch?: number
  /**
   * most images per vision run (default 8). A text query waits for the run in flight, so short
   * vision runs bound search latency while images are indexed; at batch 8 align-mini's vision
   * tower already runs at its batch-32 speed per image (bench/report.md, encoders).
   */
  maxVisionBatch?: number
  /** vision input [3, inputHeight, inputWidth] */
  inputHeight: number
  inputWidth: number
  usesTokenTypeIds: boolean
  padId?: number
  logger?: PoolLogger
  onBatch?: (e: OnnxRunEvent) => void
}

/** One model input waiting for a run: an image's pixels or a text's tokens. */
interface QueuedInput {
  item: Float32Array | TokenizedText
  resolve: (v: Float32Array) => void
  reject: (e: Error) => void
  queuedAt: number
}

/**
 * A pool of worker threads running the vision and text ONNX sessions, with a queue per tower.
 * Concurrent calls are coalesced: whatever is queued when a worker is free goes out as one run
 * of up to maxBatch items. Outputs are the towers' raw (unnormalized) embeddings.
 */
export class WorkerPool {
  /** the execution provider actually in use, after any CUDA → CPU fallback */
  readonly provider: ExecutionProvider
  /** the sessions' declared inputs and outputs */
  readonly sessions: { vision: SessionInfo, text: SessionInfo }
  private readonly threads: OnnxThread[]
  private readonly queues: Record<Tower, QueuedInput[]> = { vision: [], text: [] }
  /** the inputs of each thread's run in flight */
  private readonly inflight = new Map<OnnxThread, QueuedInput[]>()
  private readonly counters: Record<Tower, TowerStats> = {
    vision: { batches: 0, items: 0, runMs: 0, largestBatch: 0 },
    text: { batches: 0, items: 0, runMs: 0, largestBatch: 0 }
  }

  private readonly maxBatch: Record<Tower, number>
  private nextId = 1
  private drainScheduled = false
  private closed = false

  private constructor (private readonly opts: WorkerPoolOptions, threads: OnnxThread[], ready: ReadyMessage) {
    this.threads = threads
    this.provider = ready.provider
    this.sessions = { vision: ready.vision, text: ready.text }
    const maxBatch = Math.max(1, opts.maxBatch ?? DEFAULT_MAX_BATCH)
    this.maxBatch = { text: maxBatch, vision: Math.min(maxBatch, Math.max(1, opts.maxVisionBatch ?? DEFAULT_MAX_VISION_BATCH)) }
  }

  /** Starts the workers and loads both sessions in each. Rejects (and stops every worker) if any fails. */
  static async start (opts: WorkerPoolOptions): Promise<WorkerPool> {
    const n = Math.max(1, opts.workers ?? 1)
    const threads = Math.max(1, opts.threads ?? 1)
    // the pool exists only once every thread is ready; an exit before that rejects the start instead
    const box: { pool?: WorkerPool } = {}
    const started = await OnnxThread.startAll(n, { type: 'init', visionPath: opts.visionPath, textPath: opts.textPath, threads, provider: opts.provider }, opts.logger,
      (thread, code) => { box.pool?.lost(thread, code) })
    const { ready } = started
    opts.logger?.info({ provider: ready.provider, workers: n, threads }, `ONNX sessions ready on ${ready.provider}`)
    box.pool = new WorkerPool(opts, started.threads, ready)
    return box.pool
  }

  /** Raw vision tower outputs for CHW pixel tensors of [3, inputHeight, inputWidth]. */
  async runVision (pixels: Float32Array[]): Promise<Float32Array[]> {
    const want = 3 * this.opts.inputHeight * this.opts.inputWidth
    for (const p of pixels) {
      if (p.length !== want) throw new RangeError(`pixel tensor has ${p.length} values, the vision tower takes ${want} (3×${this.opts.inputHeight}×${this.opts.inputWidth})`)
    }
    return await this.enqueue('vision', pixels)
  }

  /** Raw text tower outputs for tokenized texts (padded together per run). */
  async runText (texts: TokenizedText[]): Promise<Float32Array[]> {
    for (const t of texts) if (t.ids.length === 0) throw new RangeError('a tokenized text is empty')
    return await this.enqueue('text', texts)
  }

  /** Cumulative per-tower counters since start. */
  stats (): Record<Tower, TowerStats> {
    return { vision: { ...this.counters.vision }, text: { ...this.counters.text } }
  }

  /** Stops every worker; queued and in-flight calls reject. Idempotent. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    const err = new Error('the encoder was closed')
    for (const tower of ['vision', 'text'] as const) for (const input of this.queues[tower].splice(0)) input.reject(err)
    await Promise.all(this.threads.map(async (t) => await t.terminate(err)))
  }

  /** Number of live worker threads (0 after close). */
  get size (): number {
    return this.closed ? 0 : this.threads.length
  }

  private async enqueue (tower: Tower, items: Array<Float32Array | TokenizedText>): Promise<Float32Array[]> {
    if (this.closed) throw new Error('the encoder was closed')
    const now = performance.now()
    const results = items.map(async (item) => await new Promise<Float32Array>((resolve, reject) => {
      this.queues[tower].push({ item, resolve, reject, queuedAt: now })
    }))
    this.scheduleDrain()
    return await Promise.all(results)
  }

  /** Defers dispatch to the next macrotask so calls made in the same tick share one run. */
  private scheduleDrain (): void {
    if (this.drainScheduled) return
    this.drainScheduled = true
    setImmediate(() => {
      this.drainScheduled = false
      this.drain()
    })
  }

  private drain (): void {
    if (this.closed) return
    for (const thread of this.threads) {
      if (thread.busy) continue
      const tower = this.nextTower()
      if (tower === undefined) return
      this.dispatch(thread, tower, this.queues[tower].splice(0, this.maxBatch[tower]))
    }
  }

  /**
   * Text first: a text run is a search someone waits for and costs a fraction of a millisecond,
   * while queued images are usually a batch job. Images that have waited VISION_MAX_WAIT_MS go
   * first anyway, so a steady stream of searches cannot starve indexing.
   */
  private nextTower (): Tower | undefined {
    const v = this.queues.vision[0]
    const t = this.queues.text[0]
    if (v === undefined) return t === undefined ? undefined : 'text'
    if (t === undefined) return 'vision'
    return performance.now() - v.queuedAt >= VISION_MAX_WAIT_MS ? 'vision' : 'text'
  }

  private dispatch (thread: OnnxThread, tower: Tower, inputs: QueuedInput[]): void {
    const id = this.nextId++
    const queuedAt = inputs[0]!.queuedAt
    let msg: VisionRunMessage | TextRunMessage
    let transfer: ArrayBuffer[]
    if (tower === 'vision') {
      const { inputHeight: height, inputWidth: width } = this.opts
      const per = 3 * height * width
      const pixels = new Float32Array(inputs.length * per)
      inputs.forEach((j, i) => pixels.set(j.item as Float32Array, i * per))
      msg = { type: 'run', id, tower, batch: inputs.length, pixels, height, width }
      transfer = [pixels.buffer]
    } else {
      const b = packTokens(inputs.map((j) => j.item as TokenizedText), this.opts.usesTokenTypeIds, this.opts.padId ?? 0)
      msg = { type: 'run', id, tower, batch: b.batch, length: b.length, inputIds: b.inputIds, attentionMask: b.attentionMask }
      transfer = [b.inputIds.buffer as ArrayBuffer, b.attentionMask.buffer as ArrayBuffer]
      if (b.tokenTypeIds !== undefined) {
        msg.tokenTypeIds = b.tokenTypeIds
        transfer.push(b.tokenTypeIds.buffer as ArrayBuffer)
      }
    }
    const dispatchedAt = performance.now()
    this.inflight.set(thread, inputs)
    thread.run(msg, transfer).then((reply) => {
      this.settle(tower, inputs, reply.data, reply.dims, reply.runMs, dispatchedAt - queuedAt)
    }, (err: Error) => {
      const failed = new Error(`${tower} tower run failed: ${err.message}`)
      for (const input of inputs) input.reject(failed)
    }).finally(() => {
      this.inflight.delete(thread)
      this.drain()
    })
  }

  /** A thread exited on its own: its run already failed (onnx-threads.ts); the rest of the pool carries on. */
  private lost (thread: OnnxThread, code: number): void {
    if (this.closed) return
    const i = this.threads.indexOf(thread)
    if (i >= 0) this.threads.splice(i, 1)
    if (this.threads.length === 0) {
      this.closed = true
      const err = new Error(`ONNX worker exited unexpectedly (code ${code})`)
      for (const tower of ['vision', 'text'] as const) for (const input of this.queues[tower].splice(0)) input.reject(err)
    }
    this.opts.logger?.warn({ code, workersLeft: this.threads.length }, 'ONNX worker exited')
  }

  private settle (tower: Tower, jobs: QueuedInput[], data: Float32Array, dims: number[], runMs: number, queueMs: number): void {
    const dim = dims[1] ?? 0
    if (dims.length !== 2 || dims[0] !== jobs.length) {
      const err = new Error(`${tower} tower returned shape [${dims.join(', ')}], expected [${jobs.length}, dim]`)
      for (const job of jobs) job.reject(err)
      return
    }
    // One copy per item, so a caller that keeps (or transfers) one vector does not pin or detach the batch.
    jobs.forEach((job, i) => job.resolve(data.slice(i * dim, (i + 1) * dim)))
    const c = this.counters[tower]
    c.batches++
    c.items += jobs.length
    c.runMs += runMs
    c.largestBatch = Math.max(c.largestBatch, jobs.length)
    this.opts.onBatch?.({ tower, size: jobs.length, runMs, queueMs })
  }
}
