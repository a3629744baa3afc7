/**
 * What the index queue's messages mean (the queue consumer, queue-consumer.ts, runs them):
 *   - plan:   lists a directory job's files under this worker's IMPORT_DIR (once: expand locks the
 *             job row and leaves a listed job alone), then splits the job into batch messages;
 *   - batch:  reads the batch's files (this worker's IMPORT_DIR, or the upload staged in the
 *             database), encodes them and commits images, vectors and the items' progress in one
 *             transaction (ingest-batch.ts); the last batch marks the job done;
 *   - failed: a plan or batch that failed every try: the job fails with the reason.
 * A batch whose every file is missing is a batch error (the queue retries it, maybe on a worker
 * that sees the files), not a list of failed items. A job that is cancelled has its remaining
 * batches skipped. Each commit writes only items still pending, so a batch that runs twice stores
 * nothing twice and cannot bring back an image deleted in between.
 * The sweep, every minute: plans queued jobs whose plan never reached the queue, re-sends the
 * batches of running jobs whose messages the queue lost (same ids, so nothing is sent twice), and
 * removes staged uploads of finished jobs (a failed job's after INDEX_FAILED_KEEP).
 */
import { access, constants, readdir, realpath } from 'node:fs/promises'
import type { ClusterJobStore, JobItem, JobRow, UploadStaging } from '../../backends/ports.js'
import { isTerminal, type Logger } from '../../core/types.js'
import { filesUnder, ingestBatch, type IngestFn, type ReadFiles } from '../ingest-batch.js'
import { DEFAULT_MAX_FILE_BYTES, idFromPath, skipCounter, walkImages } from '../sources.js'
import type { BatchMessage, FailedMessage, IndexQueue, PlanMessage, QueueMessage } from '../../backends/index-queue.js'

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

export interface IndexHandlerDeps {
  queue: IndexQueue
  jobs: ClusterJobStore
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
  /** largest file read (default 64 MiB) */
  maxFileBytes?: number
  /** how long a failed job keeps its staged uploads, so it can be resumed, ms (default 7 days) */
  keepFailedMs?: number
  onBatch?: (e: BatchEvent) => void
}

/** a job's progress is logged at most this often by one worker */
const PROGRESS_LOG_MS = 5000
/** INDEX_FAILED_KEEP's default */
export const DEFAULT_KEEP_FAILED_MS = 7 * 24 * 3600_000

/** every file of a batch is missing: the mount is gone or the files are elsewhere; a retry may find them */
export class BatchFilesMissingError extends Error {
  constructor (n: number, first: string) {
    super(`all ${n} files of the batch are missing (first: ${first}); is IMPORT_DIR mounted on this worker?`)
    this.name = 'BatchFilesMissingError'
  }
}

export class IndexHandlers {
  private readonly lastProgressLog = new Map<string, number>()

  constructor (private readonly deps: IndexHandlerDeps) {}

  /** Why this worker cannot read its IMPORT_DIR (undefined when it can): a worker that cannot refuses work. */
  async importDirProblem (): Promise<string | undefined> {
    const dir = this.deps.importDir
    try {
      await access(dir, constants.R_OK | constants.X_OK)
      await readdir(dir)
      return undefined
    } catch (err) {
      return `IMPORT_DIR ${dir} is not readable here (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): mount it, or fix its permissions`
    }
  }

  /** Lists a directory job's files (once) and queues the job's batches. */
  async plan ({ data }: QueueMessage<PlanMessage>): Promise<void> {
    const { jobs, queue, logger } = this.deps
    const { jobId } = data
    const attempt = data.attempt ?? 0
    const job = await jobs.get(jobId)
    if (job === undefined || isTerminal(job.status) || (job.attempt ?? 0) !== attempt) return
    if (!(await jobs.setStatusUnlessTerminal(jobId, 'running'))) return
    const log = logger.child({ job: jobId })
    if (!job.expanded) {
      const { source } = job
      const directory = 'directory' in source ? source.directory : '.'
      const byPath = 'directory' in source && source.idFromPath === true
      const items: JobItem[] = []
      const { onSkip, skipped } = skipCounter()
      for await (const rel of walkImages(await this.rootOf(job), directory, undefined, onSkip)) items.push(byPath ? { path: rel, id: idFromPath(rel) } : { path: rel })
      // a second planner of the same job (the first was thought dead during a slow walk) changes nothing
      if (await jobs.expand(jobId, items, skipped)) log.info({ total: items.length, directory }, 'index job: directory listed')
      else log.info({ directory }, 'index job: already listed by another worker; its listing stays')
    }
    await jobs.setBatchSize(jobId, Math.max(1, this.deps.batchSize))
    const planned = await current(jobs, jobId)
    const size = planned.batchSize ?? Math.max(1, this.deps.batchSize)
    const batches = batchesOf(jobId, attempt, planned.total, size)
    await queue.sendBatches(batches)
    log.info({ total: planned.total, batches: batches.length, batchSize: size, attempt }, 'index job queued in batches')
    if (batches.length === 0) await this.finishIfComplete(jobId)
  }

  async batch (msg: QueueMessage<BatchMessage>, signal: AbortSignal): Promise<void> {
    const { jobs, ingest, logger } = this.deps
    const { jobId, n, first, last } = msg.data
    const started = Date.now()
    const event = (outcome: BatchEvent['outcome'], items = 0, indexed = 0, duplicates = 0): void => {
      this.deps.onBatch?.({ jobId, outcome, items, indexed, duplicates, ms: Date.now() - started })
    }
    logger.debug({ job: jobId, batch: n, message: msg.id, tries: msg.retryCount + 1 }, 'index batch claimed')
    const job = await jobs.get(jobId)
    if (job === undefined || isTerminal(job.status) || (job.attempt ?? 0) !== (msg.data.attempt ?? 0)) { event('skipped'); return }
    // a retried batch (its worker died) finds the items that worker committed already recorded
    const batch = (await jobs.pending(jobId, last - first + 1, first - 1)).filter((b) => b.seq <= last)
    if (batch.length > 0) {
      logger.debug({ job: jobId, batch: n, message: msg.id, items: batch.length, tries: msg.retryCount + 1 }, 'index batch started')
      let counts
      try {
        counts = await ingestBatch(jobId, batch, await this.readerFor(job), ingest, async (progress) => { await jobs.complete(progress) }, {
          // a batch past its wall-time cap has gone back to the queue: it must not commit after all
          beforeCommit: async () => { if (signal.aborted) throw new Error('the batch ran past its cap; not committed') }
        })
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

  /** A plan or batch failed every try: its job fails, with the reason (a message of an earlier run of the job is ignored). */
  async failed (msg: QueueMessage<FailedMessage>): Promise<void> {
    const { jobs, logger } = this.deps
    const data = msg.data
    const what = 'first' in data ? `batch ${data.n} (items ${data.first}–${data.last})` : 'planning'
    const job = await jobs.get(data.jobId)
    if (job === undefined || (job.attempt ?? 0) !== (data.attempt ?? 0)) return
    const reason = `${what} failed on every try${msg.error === undefined ? '' : `: ${msg.error}`}`
    if (await jobs.fail(data.jobId, { item: '(job)', error: reason })) {
      logger.error({ job: data.jobId, reason }, 'index job failed; POST /v1/index-jobs/:id/resume runs it again')
    }
  }

  /** Plans jobs whose plan never reached the queue, re-sends lost batches, removes staged uploads of finished jobs. */
  async sweep (): Promise<void> {
    const { jobs, queue, staging, logger } = this.deps
    try {
      for (const job of await jobs.unfinished()) {
        if (job.status === 'queued') await queue.sendPlan(job.id, job.attempt ?? 0)
      }
      // ids are derived from job, run and number: a batch the queue still holds is not sent again
      for (const j of await jobs.pendingBatches()) {
        await queue.sendBatches(j.batches.map((n) => batchOf(j.jobId, j.attempt, n, j.total, j.batchSize)))
      }
      const removed = await staging.removeFinished(this.deps.keepFailedMs ?? DEFAULT_KEEP_FAILED_MS)
      if (removed > 0) logger.info({ jobs: removed }, 'removed the staged uploads of finished jobs')
    } catch (err) {
      logger.warn({ err }, 'index worker: the sweep of unplanned jobs and lost batches failed; it tries again later')
    }
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
        if (job.kind === 'upload') {
          await this.deps.staging.remove(job.id).catch((err: unknown) => {
            logger.warn({ err, job: job.id }, 'could not remove a finished job\'s staged upload; the next sweep does')
          })
        }
      }
      return
    }
    const last = this.lastProgressLog.get(jobId) ?? 0
    if (Date.now() - last >= PROGRESS_LOG_MS) {
      this.lastProgressLog.set(jobId, Date.now())
      log.info({ done: job.done, failed: job.failed, total: job.total }, 'index job progress')
    }
  }

  /** the folder a job's paths are relative to, on this machine */
  private async rootOf (job: JobRow): Promise<string> {
    const demo = 'demoPool' in job.source ? job.source.demoPool : undefined
    // resolved, so files are checked against the real folder (IMPORT_DIR may be a symlink to the mount)
    return await realpath(demo !== undefined ? (this.deps.demoPoolDir ?? job.root) : this.deps.importDir)
  }

  /** Reads a batch's files; a batch none of whose files exists is thrown back to the queue. */
  private async readerFor (job: JobRow): Promise<ReadFiles> {
    const maxBytes = this.deps.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES
    const read: ReadFiles = job.kind !== 'upload'
      ? filesUnder(await this.rootOf(job), maxBytes)
      : async (items) => {
        const files = await this.deps.staging.read(job.id, items.map((i) => i.path))
        return files.map((bytes, i) => {
          if (bytes === undefined) return { error: `staged upload missing: ${items[i]?.name ?? items[i]?.path ?? ''}`, missing: true }
          if (bytes.length > maxBytes) return { error: `"${items[i]?.name ?? ''}" is ${bytes.length} bytes; the limit is ${maxBytes}` }
          return { bytes }
        })
      }
    return async (items) => {
      const reads = await read(items)
      if (reads.length > 0 && reads.every((r) => 'missing' in r && r.missing === true)) throw new BatchFilesMissingError(reads.length, items[0]?.name ?? items[0]?.path ?? '')
      return reads
    }
  }
}

/** the batch messages of run `attempt` of a job of `total` items split by `size` */
export function batchesOf (jobId: string, attempt: number, total: number, size: number): BatchMessage[] {
  const batches: BatchMessage[] = []
  for (let n = 0; n * size < total; n++) batches.push(batchOf(jobId, attempt, n, total, size))
  return batches
}

function batchOf (jobId: string, attempt: number, n: number, total: number, size: number): BatchMessage {
  const b: BatchMessage = { jobId, n, first: n * size, last: Math.min(total, (n + 1) * size) - 1 }
  if (attempt !== 0) b.attempt = attempt
  return b
}

async function current (jobs: ClusterJobStore, id: string): Promise<JobRow> {
  const job = await jobs.get(id)
  if (job === undefined) throw new Error(`index job "${id}" vanished`)
  return job
}
