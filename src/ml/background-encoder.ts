/**
 * Decode, thumbnail and encode for bulk work (index jobs) in a child process at a lower
 * scheduling priority.
 *
 * Why a process: on 2 cores a job's sharp decodes (on libuv's thread pool, shared with the
 * tokenizer of every text search) and its vision runs took the CPU that searches needed, and
 * search p99 rose ~3×. Node sets priorities per process or for the calling thread only, so the
 * job's image work moves to a process whose threads all run at `nice`: the kernel gives searches
 * the CPU first and the job what is left. A crash inside a decoder library also ends that
 * process, not the server. Commits and HNSW inserts stay in the server, which owns the store.
 */
import { fork, type ChildProcess } from 'node:child_process'
import os from 'node:os'
import { PayloadTooLargeError, UnsupportedImageError } from '../core/errors.js'
import { DEFAULT_INDEX_JOB_NICE } from '../core/limits.js'
import type { BackgroundInit, EmbedItem, FromBackground, ToBackground } from './background-protocol.js'
import { withMallocTuning } from './malloc-env.js'
import type { PreviewOptions } from './preview.js'
import type { EmbeddedImage } from './types.js'

/**
 * nice value of the child unless configured. Against a busy nice-0 thread a nice-19 one gets ~1.5%
 * of a core, so a job slows down only while searches keep every core busy. Service benchmark, p99
 * during indexing ÷ idle, worst of 3 rates: 6.0 at nice 0, 2.3 at 10, 1.9 at 19; the job ran at
 * about the same rate at 10 and 19 (~150–160 images/s while serving).
 */
export const DEFAULT_BACKGROUND_NICE = DEFAULT_INDEX_JOB_NICE
/**
 * The nice value the child runs at: `configured`, but never a higher priority (a lower nice value)
 * than the server's own. Run as root under `nice -n 10`, the child would otherwise be raised above it.
 */
export function backgroundNice (configured: number, own = os.getPriority()): number {
  return Math.min(19, Math.max(configured, own))
}

/** how long close() waits for the child to exit by itself */
const CLOSE_GRACE_MS = 2000

export interface BackgroundEncoderOptions {
  init: Omit<BackgroundInit, 'type'>
  logger?: { warn: (o: object, m?: string) => void }
}

interface Pending { resolve: (items: EmbedItem[]) => void, reject: (err: Error) => void }

/** Under tsx the entry is .ts and needs tsx's loader; compiled, the .js runs as is. CPU-profile flags carry over. */
function spawnChild (): ChildProcess {
  const self = import.meta.url
  const ts = self.endsWith('.ts')
  const entry = new URL(ts ? './background-process.ts' : './background-process.js', self)
  const profiling = process.execArgv.filter((a) => a.startsWith('--cpu-prof'))
  const execArgv = [...(ts ? ['--import', import.meta.resolve('tsx')] : []), ...profiling]
  return fork(entry, [], { execArgv, env: withMallocTuning(process.env), serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
}

function toResult (item: EmbedItem): EmbeddedImage | Error {
  if (!item.ok) {
    if (item.code === 'PAYLOAD_TOO_LARGE') return new PayloadTooLargeError(item.message)
    if (item.code === 'UNSUPPORTED_MEDIA_TYPE') return new UnsupportedImageError(item.message)
    return new Error(item.message)
  }
  const { embedding, width, height, thumbnail, decodeMs, preview } = item
  const buffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength)
  return { embedding, width, height, decodeMs, thumbnail: buffer(thumbnail), ...(preview === undefined ? {} : { preview: { ...preview, bytes: buffer(preview.bytes) } }) }
}

/**
 * Bytes per message to the child before the next image starts a new one. A camera JPEG (2–6 MB)
 * travels alone, so its decode starts as soon as it has arrived; small images still share a
 * message, and so a vision run, up to maxBatch.
 */
export const MESSAGE_BYTES = 1 << 20

/** `images` split, in order, into messages of at most `maxBatch` images and (unless one image is larger) MESSAGE_BYTES */
export function messagesOf (images: Buffer[], maxBatch: number): Buffer[][] {
  const out: Buffer[][] = []
  let bytes = 0
  for (const image of images) {
    const last = out[out.length - 1]
    if (last === undefined || last.length >= maxBatch || bytes + image.length > MESSAGE_BYTES) {
      out.push([image])
      bytes = image.length
    } else {
      last.push(image)
      bytes += image.length
    }
  }
  return out
}

/**
 * Image bytes sent to the child and not answered yet. Beyond it a message waits for answers:
 * the child decodes only a few at a time, and every photo queued in the pipe is held serialized
 * here and deserialized there (two batches of 32 photos at 24 MP: 230 MB in each process).
 */
export const WINDOW_BYTES = 32 << 20

export class BackgroundImageEncoder {
  private child: ChildProcess | undefined
  private readonly pending = new Map<number, Pending>()
  private outstanding = 0
  private readonly admissions: Array<{ bytes: number, admit: () => void }> = []
  private nextId = 1
  private closed = false

  constructor (private readonly opts: BackgroundEncoderOptions) {}

  /**
   * One L2-normalized embedding (with size, thumbnail and, when asked, the preview) or Error per image, in order.
   * The images go over in several messages (messagesOf), not as one: the child starts decoding the
   * first while the next are still in the pipe, and encodes each message's images while it decodes
   * the following ones. One message for a batch of 32 photos (115 MB at 24 MP) kept the child's
   * only thread receiving it for a second or more before any decode started.
   */
  async embed (images: Buffer[], preview?: PreviewOptions): Promise<Array<EmbeddedImage | Error>> {
    const runs = messagesOf(images, this.opts.init.maxBatch)
    const answers = await Promise.all(runs.map(async (run) => {
      try {
        return (await this.send(run, preview)).map(toResult)
      } catch (err) {
        const e = err instanceof Error ? err : new Error(String(err))
        return run.map(() => e)
      }
    }))
    return answers.flat()
  }

  /**
   * Starts the child now, if it is not running, so that its process start and model load overlap
   * whatever the caller does before its first embed (an index job: listing the folder, reading and
   * hashing its first batch) instead of delaying that first batch.
   */
  warm (): void {
    if (!this.closed && this.child === undefined) this.start()
  }

  /** the child's pid while it runs (tests, diagnostics) */
  get pid (): number | undefined {
    return this.child?.pid
  }

  async close (): Promise<void> {
    this.closed = true
    const child = this.child
    this.failPending(new Error('the encoder was closed'))
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    await new Promise<void>((resolve) => {
      // disconnecting lets the child exit by itself (and write a CPU profile when asked to); a stuck one is killed
      const stuck = setTimeout(() => child.kill('SIGKILL'), CLOSE_GRACE_MS)
      child.once('exit', () => { clearTimeout(stuck); resolve() })
      child.ref() // an idle child is unref'd; waiting for its exit must keep the loop alive
      if (child.connected) child.disconnect()
      else child.kill()
    })
  }

  private async send (images: Buffer[], preview: PreviewOptions | undefined): Promise<EmbedItem[]> {
    const bytes = images.reduce((sum, b) => sum + b.length, 0)
    await new Promise<void>((resolve) => { this.admissions.push({ bytes, admit: resolve }); this.admitNext() })
    try {
      if (this.closed) throw new Error('the encoder was closed')
      const child = this.child ?? this.start()
      const id = this.nextId++
      return await new Promise<EmbedItem[]>((resolve, reject) => {
        this.pending.set(id, { resolve, reject })
        if (this.pending.size === 1) this.hold(child, true)
        child.send({ type: 'embed', id, images, ...(preview === undefined ? {} : { preview }) } satisfies ToBackground)
      })
    } finally {
      this.outstanding -= bytes
      this.admitNext()
    }
  }

  /** Lets waiting messages go, in order, while they fit in WINDOW_BYTES (one always goes when none is out). */
  private admitNext (): void {
    for (let next = this.admissions[0]; next !== undefined; next = this.admissions[0]) {
      if (this.outstanding > 0 && this.outstanding + next.bytes > WINDOW_BYTES) return
      this.admissions.shift()
      this.outstanding += next.bytes
      next.admit()
    }
  }

  private start (): ChildProcess {
    const child = spawnChild()
    this.child = child
    // Lowered from here as well, at once: the child's own startup (loader, sharp, onnxruntime) would otherwise run at full priority
    const nice = backgroundNice(this.opts.init.nice)
    try { if (child.pid !== undefined) os.setPriority(child.pid, nice) } catch { /* the child lowers itself at init too */ }
    child.send({ type: 'init', ...this.opts.init, nice } satisfies ToBackground)
    child.on('message', (msg: FromBackground) => {
      if (msg.type === 'ready') {
        return
      }
      const p = this.pending.get(msg.id)
      if (p === undefined) return
      this.pending.delete(msg.id)
      if (this.pending.size === 0) this.hold(child, false)
      p.resolve(msg.items)
    })
    // a send to a process that has just died errors here; 'exit' follows and fails what was pending
    child.on('error', (err) => this.opts.logger?.warn({ err }, 'background image encoder error'))
    child.once('exit', (code, signal) => {
      if (this.child === child) this.child = undefined
      if (this.closed) return
      const how = signal !== null ? `signal ${signal}` : `code ${String(code)}`
      this.opts.logger?.warn({ code, signal, batches: this.pending.size }, 'background image encoder exited; the next batch starts a new one')
      this.failPending(new Error(`the background image encoder process stopped (${how}) while preparing this image`))
    })
    return child
  }

  private failPending (err: Error): void {
    const waiting = [...this.pending.values()]
    this.pending.clear()
    for (const p of waiting) p.reject(err)
  }

  /** An idle child must not keep the server (or a test) alive. */
  private hold (child: ChildProcess, busy: boolean): void {
    if (busy) { child.ref(); child.channel?.ref() } else { child.unref(); child.channel?.unref() }
  }
}
