/**
 * A generic consumer of the shared queue: it claims messages one at a time, up to `concurrency`
 * at once, hands each to its queue's handler, and completes it, or fails it back for a retry. It
 * keeps the messages in hand alive with a heartbeat, and gives them back at shutdown. What the
 * messages mean is the handlers' business (index-handlers.ts).
 *
 * Two guards keep a worker from holding work it cannot do:
 *   - a wall-time cap per message (per queue): a handler still running after it (a read hung on
 *     a hard-mounted share, a hung encoder) loses its message, which goes back to the queue with
 *     the reason logged; its signal is aborted, so it commits nothing if it ever wakes;
 *   - `ready`: asked before claiming (at most once per poll); while it names a reason (IMPORT_DIR
 *     is not mounted) the consumer claims nothing and logs why, once per change.
 */
import type { Logger } from '../../core/types.js'
import type { IndexQueue, QueueMessage, QueueName } from '../../backends/index-queue.js'

/** Does the work of one message; a rejection fails it back to the queue. */
export type MessageHandler = (msg: QueueMessage<unknown>, signal: AbortSignal) => Promise<void>

export interface QueueConsumerOptions {
  queue: IndexQueue
  logger: Logger
  /** the queues to claim from and their handlers; `control` queues are looked at once per poll interval, before the rest */
  handlers: Array<{ queue: QueueName, handle: MessageHandler, control?: boolean, capMs?: number }>
  /** messages worked on at once */
  concurrency: number
  /** why this worker cannot take work now (undefined: it can); asked before claiming, at most once per poll */
  ready?: () => Promise<string | undefined>
  /** how long close() lets the messages in hand finish before giving them back, ms (default 20 s) */
  closeGraceMs?: number
  /** test-only: awaited after a handler succeeded and before the queue hears so (the window a SIGKILL test aims at) */
  beforeAcknowledge?: (queue: QueueName, msg: QueueMessage<unknown>) => Promise<void>
}

interface Held { queue: QueueName, id: string, abort: AbortController }

/** a handler that ran past its cap */
export class MessageTimeoutError extends Error {
  constructor (queue: QueueName, capMs: number) {
    super(`a ${queue} message ran past its wall-time cap of ${capMs} ms (a read or the encoder hung): it goes back to the queue`)
    this.name = 'MessageTimeoutError'
  }
}

export class QueueConsumer {
  private readonly active = new Map<Promise<void>, Held>()
  private closing = false
  private loop: Promise<void> | undefined
  private wakeUp: (() => void) | undefined
  private controlDue = 0
  private readyDue = 0
  private notReady: string | undefined
  private heartbeat: NodeJS.Timeout | undefined

  constructor (private readonly opts: QueueConsumerOptions) {}

  /** Starts claiming work. */
  start (): void {
    if (this.loop !== undefined) return
    const { queue } = this.opts
    this.heartbeat = setInterval(() => { void this.beat() }, queue.timing.heartbeatMs)
    this.heartbeat.unref()
    void queue.listen(() => { this.wake() })
    this.loop = this.run()
  }

  /** Looks at the queue now instead of at the next poll. */
  wake (): void {
    this.controlDue = 0
    this.wakeUp?.()
  }

  /** messages being worked on now */
  get inFlight (): number { return this.active.size }

  /** why this consumer takes no work, when it does not */
  get refusing (): string | undefined { return this.notReady }

  /**
   * Stops claiming work and lets the messages in hand finish (up to closeGraceMs); those still
   * running then are given back to the queue, so another worker takes them at once.
   */
  async close (): Promise<void> {
    if (this.closing) { await this.loop; return }
    this.closing = true
    this.wakeUp?.()
    let timer: NodeJS.Timeout | undefined
    const grace = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), this.opts.closeGraceMs ?? 20_000) })
    const finished = await Promise.race([this.loop ?? Promise.resolve(), grace])
    clearTimeout(timer)
    if (finished === 'timeout') {
      const held = [...this.active.values()]
      this.opts.logger.warn({ messages: held.length }, 'index worker: batches still running at shutdown go back to the queue')
      for (const h of held) {
        h.abort.abort()
        await this.opts.queue.fail(h.queue, h.id, new Error('the worker shut down')).catch(() => {})
      }
    }
    clearInterval(this.heartbeat)
  }

  private async run (): Promise<void> {
    while (!this.closing) {
      if (this.active.size >= this.opts.concurrency) {
        await Promise.race(this.active.keys())
        continue
      }
      let next: { queue: QueueName, msg: QueueMessage<unknown> } | undefined
      try {
        next = await this.mayClaim() ? await this.claim() : undefined
      } catch (err) {
        this.opts.logger.warn({ err }, 'index worker: could not read the queue; retrying')
      }
      if (next === undefined) {
        await this.idle()
        continue
      }
      const held: Held = { queue: next.queue, id: next.msg.id, abort: new AbortController() }
      const task = this.handle(next.queue, next.msg, held).finally(() => {
        this.active.delete(task)
        this.wakeUp?.()
      })
      this.active.set(task, held)
    }
    await Promise.allSettled(this.active.keys())
  }

  /** whether `ready` allows work now (asked at most once per poll interval) */
  private async mayClaim (): Promise<boolean> {
    if (this.opts.ready === undefined) return true
    if (Date.now() < this.readyDue) return this.notReady === undefined
    this.readyDue = Date.now() + this.opts.queue.timing.pollMs
    const reason = await this.opts.ready().catch((err: unknown) => (err as Error).message)
    if (reason !== this.notReady) {
      if (reason === undefined) this.opts.logger.info('index worker: ready again; taking work')
      else this.opts.logger.error({ reason }, 'index worker: refusing work until this is fixed')
    }
    this.notReady = reason
    return reason === undefined
  }

  /** the next message: control queues first (looked at once per poll interval), then the rest */
  private async claim (): Promise<{ queue: QueueName, msg: QueueMessage<unknown> } | undefined> {
    const { queue, handlers } = this.opts
    if (Date.now() >= this.controlDue) {
      this.controlDue = Date.now() + queue.timing.pollMs
      for (const h of handlers.filter((h) => h.control === true)) {
        const msg = await queue.fetch(h.queue)
        if (msg !== undefined) return { queue: h.queue, msg }
      }
    }
    for (const h of handlers.filter((h) => h.control !== true)) {
      const msg = await queue.fetch(h.queue)
      if (msg !== undefined) return { queue: h.queue, msg }
    }
    return undefined
  }

  /** Waits for the poll interval, a finished message, a sender's notice, wake() or close(). */
  private async idle (): Promise<void> {
    void this.opts.queue.listen(() => { this.wake() })
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, this.opts.queue.timing.pollMs)
      function done (): void { clearTimeout(timer); resolve() }
      this.wakeUp = done
    })
    this.wakeUp = undefined
  }

  private async handle (queue: QueueName, msg: QueueMessage<unknown>, held: Held): Promise<void> {
    const { logger } = this.opts
    const handler = this.opts.handlers.find((h) => h.queue === queue)!
    const job = (msg.data as { jobId?: string }).jobId
    let timer: NodeJS.Timeout | undefined
    try {
      const work = handler.handle(msg, held.abort.signal)
      if (handler.capMs === undefined) {
        await work
      } else {
        const capMs = handler.capMs
        const capped = new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => { held.abort.abort(); reject(new MessageTimeoutError(queue, capMs)) }, capMs)
        })
        work.catch(() => {}) // once capped, its own end matters to no one
        await Promise.race([work, capped])
      }
      await this.opts.beforeAcknowledge?.(queue, msg)
      await this.opts.queue.complete(queue, msg.id)
    } catch (err) {
      if (err instanceof MessageTimeoutError) logger.error({ job, queue, message: msg.id, tries: msg.retryCount + 1, reason: err.message }, 'index worker: message timed out; the queue tries it again')
      else logger.warn({ err, job, queue, message: msg.id, tries: msg.retryCount + 1 }, 'index worker: message failed; the queue tries it again')
      await this.opts.queue.fail(queue, msg.id, err).catch((failErr: unknown) => {
        // it expires and is retried anyway
        logger.warn({ err: failErr, message: msg.id }, 'index worker: could not hand a failed message back')
      })
    } finally {
      clearTimeout(timer)
    }
  }

  private async beat (): Promise<void> {
    const byQueue = new Map<QueueName, string[]>()
    for (const h of this.active.values()) byQueue.set(h.queue, [...(byQueue.get(h.queue) ?? []), h.id])
    for (const [queue, ids] of byQueue) {
      await this.opts.queue.heartbeat(queue, ids).catch((err: unknown) => {
        this.opts.logger.warn({ err }, 'index worker: heartbeat failed; the batches in hand may be retried elsewhere')
      })
    }
  }
}
