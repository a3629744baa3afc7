/**
 * A worker of the shared index queue (cluster mode). It claims messages one at a time, up to
 * `concurrency` at once, and for each:
 *   - plan:   lists a directory job's files under this worker's IMPORT_DIR, then splits the job
 *             into batch messages of `batchSize` items;
 *   - batch:  reads the batch's files (this worker's IMPORT_DIR, or the upload staged in the
 *             database), encodes them and commits images, vectors and the items' progress in one
 *             transaction (ingest-batch.ts); the last batch marks the job done;
 *   - failed: a plan or batch that failed every try: the job fails with the reason.
 * A job that is cancelled (by any API replica) has its remaining batches skipped. Each commit is
 * idempotent (items already recorded are skipped, content already stored is a duplicate), so a
 * batch that runs twice, because its first worker died after committing, stores nothing twice.
 */
import { realpath } from 'node:fs/promises'
import type { JobItem, JobRow, JobStore, UploadStaging } from '../../backends/ports.js'
import { isTerminal, type Logger } from '../../core/types.js'
import { filesUnder, ingestBatch, type IngestFn, type ReadFiles } from '../ingest-batch.js'
import { DEFAULT_MAX_FILE_BYTES, idFromPath, skipCounter, walkImages } from '../sources.js'
import { QUEUES, type BatchMessage, type FailedMessage, type IndexQueue, type PlanMessage, type QueueMessage, type QueueName } from '../../backends/index-queue.js'

/** What one batch message came to, for logs and metrics. */
export interface BatchEvent {
  jobId: string
  /** committed: its items are recorded; skipped: its job was finished or cancelled, or nothing was left; failed: it goes back to the queue */
  outcome: 'committed' | 'skipped' | 'failed'
  items: number
  indexed: number
  duplicates: number
  ms: number
}

export interface IndexWorkerDeps {
  queue: IndexQueue
  jobs: JobStore
  /** where job uploads are staged (the PostgreSQL backend's) */
  staging: UploadStaging
  /** the ingest path: encodes and commits images with the job's progress */
  ingest: IngestFn
  logger: Logger
  /** this worker's IMPORT_DIR: the paths of items and directory jobs are read under it (a shared mount in a cluster) */
  importDir: string
  /** this worker's copy of the demo pool (DEMO_POOL); the demo pool job reads there, else at the path the API saw */
  demoPoolDir?: string | undefined
  /** items per batch when this worker plans a job */
  batchSize: number
  /** messages worked on at once (default 2: one batch reads and decodes while another encodes and commits) */
  concurrency?: number
  /** largest file read (default 64 MiB) */
  maxFileBytes?: number
  onBatch?: (e: BatchEvent) => void
}

/** how often a worker looks for jobs that were created but never reached the queue (the API died in between) */
const SWEEP_MS = 60_000
/** how long close() lets the batches in hand finish before giving them back to the queue */
const CLOSE_GRACE_MS = 20_000
/** a job's progress is logged at most this often by one worker */
const PROGRESS_LOG_MS = 5000

interface Held { queue: QueueName, id: string }

export class IndexWorker {
  private readonly active = new Map<Promise<void>, Held>()
  private closing = false
  private loop: Promise<void> | undefined
  private wakeUp: (() => void) | undefined
  private controlDue = 0
  private heartbeat: NodeJS.Timeout | undefined
  private sweep: NodeJS.Timeout | undefined
  private readonly lastProgressLog = new Map<string, number>()
  private readonly concurrency: number

  constructor (private readonly deps: IndexWorkerDeps) {
    this.concurrency = Math.max(1, deps.concurrency ?? 2)
  }

  /** Starts claiming work. */
  start (): void {
    if (this.loop !== undefined) return
    const { queue, logger } = this.deps
    this.heartbeat = setInterval(() => { void this.beat() }, queue.timing.heartbeatMs)
    this.heartbeat.unref()
    this.sweep = setInterval(() => { void this.sweepQueued() }, SWEEP_MS)
    this.sweep.unref()
    void this.sweepQueued()
    void queue.listen(() => { this.wake() })
    this.loop = this.run()
    logger.info({ concurrency: this.concurrency, batchSize: this.deps.batchSize, ...queue.timing }, 'index worker started')
  }

  /** Looks at the queue now instead of at the next poll (a job was just created in this process). */
  wake (): void {
    this.controlDue = 0
    this.wakeUp?.()
  }

  /** messages being worked on now */
  get inFlight (): number { return this.active.size }

  /**
   * Stops claiming work and lets the batches in hand finish (up to CLOSE_GRACE_MS); those still
   * running then are given back to the queue, so another worker takes them at once.
   */
  async close (): Promise<void> {
    if (this.closing) { await this.loop; return }
    this.closing = true
    clearInterval(this.sweep)
    this.wakeUp?.()
    let timer: NodeJS.Timeout | undefined
    const grace = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), CLOSE_GRACE_MS) })
    const finished = await Promise.race([this.loop ?? Promise.resolve(), grace])
    clearTimeout(timer)
    if (finished === 'timeout') {
      const held = [...this.active.values()]
      this.deps.logger.warn({ messages: held.length }, 'index worker: batches still running at shutdown go back to the queue')
      for (const h of held) await this.deps.queue.fail(h.queue, h.id, new Error('the worker shut down')).catch(() => {})
    }
    clearInterval(this.heartbeat)
  }

  private async run (): Promise<void> {
    while (!this.closing) {
      if (this.active.size >= this.concurrency) {
        await Promise.race(this.active.keys())
        continue
      }
      let next: { queue: QueueName, msg: QueueMessage<unknown> } | undefined
      try {
        next = await this.claim()
      } catch (err) {
        this.deps.logger.warn({ err }, 'index worker: could not read the queue; retrying')
      }
      if (next === undefined) {
        await this.idle()
        continue
      }
      const held: Held = { queue: next.queue, id: next.msg.id }
      const task = this.handle(next.queue, next.msg).finally(() => {
        this.active.delete(task)
        this.wakeUp?.()
      })
      this.active.set(task, held)
    }
    await Promise.allSettled(this.active.keys())
  }

  /** the next message: dead letters and plans first (looked at once per poll interval), then batches */
  private async claim (): Promise<{ queue: QueueName, msg: QueueMessage<unknown> } | undefined> {
    const { queue } = this.deps
    if (Date.now() >= this.controlDue) {
      this.controlDue = Date.now() + queue.timing.pollMs
      for (const name of [QUEUES.failed, QUEUES.plan]) {
        const msg = await queue.fetch(name)
        if (msg !== undefined) return { queue: name, msg }
      }
    }
    const msg = await queue.fetch(QUEUES.batch)
    return msg === undefined ? undefined : { queue: QUEUES.batch, msg }
  }

  /** Waits for the poll interval, a finished message, a sender's notice, wake() or close(). */
  private async idle (): Promise<void> {
    void this.deps.queue.listen(() => { this.wake() })
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, this.deps.queue.timing.pollMs)
      function done (): void { clearTimeout(timer); resolve() }
      this.wakeUp = done
    })
    this.wakeUp = undefined
  }

  private async handle (queue: QueueName, msg: QueueMessage<unknown>): Promise<void> {
    const { logger } = this.deps
    try {
      if (queue === QUEUES.plan) await this.plan(msg.data as PlanMessage)
      else if (queue === QUEUES.batch) await this.batch(msg as QueueMessage<BatchMessage>)
      else await this.failJob(msg as QueueMessage<FailedMessage>)
      await this.deps.queue.complete(queue, msg.id)
    } catch (err) {
      const job = (msg.data as { jobId?: string }).jobId
      logger.warn({ err, job, queue, message: msg.id, tries: msg.retryCount + 1 }, 'index worker: message failed; the queue tries it again')
      await this.deps.queue.fail(queue, msg.id, err).catch((failErr: unknown) => {
        // it expires and is retried anyway
        logger.warn({ err: failErr, message: msg.id }, 'index worker: could not hand a failed message back')
      })
    }
  }

  /** Lists a directory job's files (once) and queues the job's batches. */
  private async plan ({ jobId }: PlanMessage): Promise<void> {
    const { jobs, queue, logger } = this.deps
    const job = await jobs.get(jobId)
    if (job === undefined || isTerminal(job.status)) return
    if (!(await jobs.setStatusUnlessTerminal(jobId, 'running'))) return
    const log = logger.child({ job: jobId })
    if (!job.expanded) {
      const source = job.source as { directory?: string, idFromPath?: boolean }
      const directory = source.directory ?? '.'
      const items: JobItem[] = []
      const { onSkip, skipped } = skipCounter()
      for await (const rel of walkImages(await this.rootOf(job), directory, undefined, onSkip)) items.push(source.idFromPath === true ? { path: rel, id: idFromPath(rel) } : { path: rel })
      // expand replaces the listing: only a job never listed is listed, so a re-plan never resets progress
      await jobs.expand(jobId, items, skipped)
      log.info({ total: items.length, directory }, 'index job: directory listed')
    }
    const { total } = await current(jobs, jobId)
    const size = Math.max(1, this.deps.batchSize)
    const batches: BatchMessage[] = []
    for (let n = 0; n * size < total; n++) batches.push({ jobId, n, first: n * size, last: Math.min(total, (n + 1) * size) - 1 })
    await queue.sendBatches(batches)
    log.info({ total, batches: batches.length, batchSize: size }, 'index job queued in batches')
    if (batches.length === 0) await this.finishIfComplete(jobId)
  }

  private async batch (msg: QueueMessage<BatchMessage>): Promise<void> {
    const { jobs, ingest, logger } = this.deps
    const { jobId, n, first, last } = msg.data
    const started = Date.now()
    const event = (outcome: BatchEvent['outcome'], items = 0, indexed = 0, duplicates = 0): void => {
      this.deps.onBatch?.({ jobId, outcome, items, indexed, duplicates, ms: Date.now() - started })
    }
    const job = await jobs.get(jobId)
    if (job === undefined || isTerminal(job.status)) { event('skipped'); return }
    // a retried batch (its worker died) finds the items that worker committed already recorded
    const batch = (await jobs.pending(jobId, last - first + 1, first - 1)).filter((b) => b.seq <= last)
    if (batch.length > 0) {
      logger.debug({ job: jobId, batch: n, message: msg.id, items: batch.length, tries: msg.retryCount + 1 }, 'index batch started')
      let counts
      try {
        counts = await ingestBatch(jobId, batch, await this.readerFor(job), ingest, async (progress) => { await jobs.complete(progress) })
      } catch (err) {
        event('failed', batch.length)
        throw err
      }
      logger.debug({ job: jobId, batch: n, message: msg.id, items: batch.length, ...counts, ms: Date.now() - started }, 'index batch committed')
      event('committed', batch.length, counts.indexed, counts.duplicates)
    } else {
      event('skipped')
    }
    await this.finishIfComplete(jobId)
  }

  /** Marks the job done once every item is recorded; logs its progress now and then. */
  private async finishIfComplete (jobId: string): Promise<void> {
    const { jobs, logger } = this.deps
    const job = await current(jobs, jobId)
    const log = logger.child({ job: jobId })
    if (job.expanded && job.done + job.failed >= job.total) {
      if (await jobs.setStatusUnlessTerminal(jobId, 'done')) {
        log.info({ done: job.done, failed: job.failed, total: job.total }, 'index job done')
        this.lastProgressLog.delete(jobId)
        await this.removeStaged(job)
      }
      return
    }
    const last = this.lastProgressLog.get(jobId) ?? 0
    if (Date.now() - last >= PROGRESS_LOG_MS) {
      this.lastProgressLog.set(jobId, Date.now())
      log.info({ done: job.done, failed: job.failed, total: job.total }, 'index job progress')
    }
  }

  /** A plan or batch failed every try: its job fails, with the reason. */
  private async failJob (msg: QueueMessage<FailedMessage>): Promise<void> {
    const { jobs, logger } = this.deps
    const data = msg.data
    const what = 'first' in data ? `batch ${data.n} (items ${data.first}–${data.last})` : 'planning'
    const job = await jobs.get(data.jobId)
    if (job === undefined) return
    const reason = `${what} failed on every try${msg.error === undefined ? '' : `: ${msg.error}`}`
    await jobs.addError(data.jobId, { item: '(job)', error: reason })
    if (await jobs.setStatusUnlessTerminal(data.jobId, 'failed')) {
      logger.error({ job: data.jobId, reason }, 'index job failed')
      await this.removeStaged(job)
    }
  }

  /** Queues the planning of jobs that were created but whose plan never reached the queue. */
  private async sweepQueued (): Promise<void> {
    try {
      for (const job of await this.deps.jobs.unfinished()) {
        if (job.status === 'queued') await this.deps.queue.sendPlan(job.id)
      }
      const removed = await this.deps.staging.removeFinished()
      if (removed > 0) this.deps.logger.info({ jobs: removed }, 'removed the staged uploads of finished jobs')
    } catch (err) {
      this.deps.logger.warn({ err }, 'index worker: could not look for unplanned jobs; it tries again later')
    }
  }

  private async beat (): Promise<void> {
    const byQueue = new Map<QueueName, string[]>()
    for (const h of this.active.values()) byQueue.set(h.queue, [...(byQueue.get(h.queue) ?? []), h.id])
    for (const [queue, ids] of byQueue) {
      await this.deps.queue.heartbeat(queue, ids).catch((err: unknown) => {
        this.deps.logger.warn({ err }, 'index worker: heartbeat failed; the batches in hand may be retried elsewhere')
      })
    }
  }

  /** the folder a job's paths are relative to, on this machine */
  private async rootOf (job: JobRow): Promise<string> {
    const demo = (job.source as { demoPool?: string } | null)?.demoPool
    // resolved, so files are checked against the real folder (IMPORT_DIR may be a symlink to the mount)
    return await realpath(demo !== undefined ? (this.deps.demoPoolDir ?? job.root) : this.deps.importDir)
  }

  private async readerFor (job: JobRow): Promise<ReadFiles> {
    const maxBytes = this.deps.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES
    if (job.kind !== 'upload') return filesUnder(await this.rootOf(job), maxBytes)
    return async (items) => {
      const files = await this.deps.staging.read(job.id, items.map((i) => i.path))
      return files.map((bytes, i) => {
        if (bytes === undefined) return { error: `staged upload missing: ${items[i]?.name ?? items[i]?.path ?? ''}` }
        if (bytes.length > maxBytes) return { error: `"${items[i]?.name ?? ''}" is ${bytes.length} bytes; the limit is ${maxBytes}` }
        return { bytes }
      })
    }
  }

  private async removeStaged (job: JobRow): Promise<void> {
    if (job.kind !== 'upload') return
    await this.deps.staging.remove(job.id).catch((err: unknown) => {
      this.deps.logger.warn({ err, job: job.id }, 'could not remove a finished job\'s staged upload; the next sweep does')
    })
  }
}

async function current (jobs: JobStore, id: string): Promise<JobRow> {
  const job = await jobs.get(id)
  if (job === undefined) throw new Error(`index job "${id}" vanished`)
  return job
}
