/**
 * A worker of the shared index queue (cluster mode): the generic queue consumer
 * (queue-consumer.ts: claim, heartbeat, complete or fail, shutdown) running the index-job
 * handlers (index-handlers.ts: plan, batch, failed), plus the sweep every minute. It takes no
 * work while its IMPORT_DIR cannot be read, and a batch running past INDEX_BATCH_TIMEOUT goes
 * back to the queue.
 */
import { QUEUES, type BatchMessage, type FailedMessage, type PlanMessage, type QueueMessage, type QueueName } from '../../backends/index-queue.js'
import { IndexHandlers, type IndexHandlerDeps } from './index-handlers.js'
import { QueueConsumer } from './queue-consumer.js'

export type { BatchEvent } from './index-handlers.js'

export interface IndexWorkerDeps extends IndexHandlerDeps {
  /** messages worked on at once (default 2: one batch reads and decodes while another encodes and commits) */
  concurrency?: number
  /** INDEX_BATCH_TIMEOUT: a batch still running after this long goes back to the queue, ms (default 10 minutes) */
  batchTimeoutMs?: number
  /** how often the sweep runs, ms (default 60 s) */
  sweepMs?: number
  /** test-only: awaited between a batch's commit and the queue's acknowledgement */
  beforeAcknowledge?: (queue: QueueName, msg: QueueMessage<unknown>) => Promise<void>
}

/** INDEX_BATCH_TIMEOUT's default: far above a batch's normal minute, far below "forever" */
export const DEFAULT_BATCH_TIMEOUT_MS = 10 * 60_000
/** how often a worker sweeps: unplanned jobs, lost batches, staged uploads of finished jobs */
const SWEEP_MS = 60_000

export class IndexWorker {
  readonly handlers: IndexHandlers
  private readonly consumer: QueueConsumer
  private sweepTimer: NodeJS.Timeout | undefined
  private started = false

  constructor (private readonly deps: IndexWorkerDeps) {
    this.handlers = new IndexHandlers(deps)
    const h = this.handlers
    this.consumer = new QueueConsumer({
      queue: deps.queue,
      logger: deps.logger,
      concurrency: Math.max(1, deps.concurrency ?? 2),
      ready: async () => await h.importDirProblem(),
      handlers: [
        { queue: QUEUES.failed, control: true, handle: async (m) => { await h.failed(m as QueueMessage<FailedMessage>) } },
        { queue: QUEUES.plan, control: true, handle: async (m) => { await h.plan(m as QueueMessage<PlanMessage>) } },
        { queue: QUEUES.batch, capMs: deps.batchTimeoutMs ?? DEFAULT_BATCH_TIMEOUT_MS, handle: async (m, signal) => { await h.batch(m as QueueMessage<BatchMessage>, signal) } }
      ],
      ...(deps.beforeAcknowledge === undefined ? {} : { beforeAcknowledge: deps.beforeAcknowledge })
    })
  }

  /** Starts claiming work, and sweeping. */
  start (): void {
    if (this.started) return
    this.started = true
    this.sweepTimer = setInterval(() => { void this.handlers.sweep() }, this.deps.sweepMs ?? SWEEP_MS)
    this.sweepTimer.unref()
    void this.handlers.sweep()
    this.consumer.start()
    const { queue, logger, batchSize } = this.deps
    logger.info({ concurrency: Math.max(1, this.deps.concurrency ?? 2), batchSize, batchTimeoutMs: this.deps.batchTimeoutMs ?? DEFAULT_BATCH_TIMEOUT_MS, ...queue.timing }, 'index worker started')
  }

  /** Looks at the queue now instead of at the next poll (a job was just created in this process). */
  wake (): void { this.consumer.wake() }

  /** messages being worked on now */
  get inFlight (): number { return this.consumer.inFlight }

  /** why this worker takes no work (its IMPORT_DIR is not readable), when it does not */
  get refusing (): string | undefined { return this.consumer.refusing }

  /** Stops claiming and sweeping; lets the batches in hand finish, or gives them back to the queue. */
  async close (): Promise<void> {
    clearInterval(this.sweepTimer)
    await this.consumer.close()
  }
}
