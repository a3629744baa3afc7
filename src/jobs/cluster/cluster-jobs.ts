/**
 * The API side of cluster mode: jobs are stored in PostgreSQL and queued in its index queue, and
 * any worker process (this one too, unless INDEX_WORKER=off) runs them. Every replica answers for
 * every job: progress, cancel and the list live in the database, not in a process.
 */
import type { ClusterJobStore, JobItem, NewJob, UploadStaging } from '../../backends/ports.js'
import { isTerminal, type JobView, type Logger } from '../../core/types.js'
import type { JobExecutor } from '../job-executor.js'
import { piecesOf, uploadItem, type UploadFiles } from '../staging.js'
import type { IndexQueue } from '../../backends/index-queue.js'
import type { IndexWorker } from './index-worker.js'

/** how often waitFor reads the job (it may finish on any machine, so there is nothing to listen to) */
const WAIT_POLL_MS = 250
/** what a staged upload job's `root` says: its files are rows, not a folder */
export const STAGED_ROOT = 'postgresql:staged_uploads'

export class ClusterJobs implements JobExecutor {
  private closed = false

  constructor (
    private readonly queue: IndexQueue,
    private readonly jobs: ClusterJobStore,
    private readonly staging: UploadStaging,
    /** this process's own worker, when it processes index work too */
    private readonly worker: IndexWorker | undefined,
    private readonly logger?: Logger
  ) {}

  async start (): Promise<void> {
    this.worker?.start()
  }

  /**
   * Stores the job, then queues its plan. Once the job row is stored the job is accepted: a plan
   * that cannot be sent now (or a crash right here) leaves it queued, with its staged files, and
   * the workers' sweep sends its plan within a minute. Only a job that could not be stored fails.
   */
  async submit (job: NewJob): Promise<void> {
    await this.jobs.create(job)
    try {
      await this.queue.sendPlan(job.id)
    } catch (err) {
      this.logger?.warn({ err, job: job.id }, 'index job stored but its plan could not be queued; the workers\' sweep queues it')
    }
    this.worker?.wake()
  }

  /**
   * Runs a failed job again as its next run: items already recorded stay, the rest are retried
   * (an upload job's staged files are kept INDEX_FAILED_KEEP after it failed). Resolves with its
   * view; undefined when there is no such job; the view unchanged when it had not failed.
   */
  async resume (id: string): Promise<{ view: JobView | undefined, resumed: boolean }> {
    const attempt = await this.jobs.resume(id)
    if (attempt !== undefined) {
      try {
        await this.queue.sendPlan(id, attempt)
      } catch (err) {
        this.logger?.warn({ err, job: id }, 'index job resumed but its plan could not be queued; the workers\' sweep queues it')
      }
      this.worker?.wake()
    }
    return { view: await this.jobs.view(id), resumed: attempt !== undefined }
  }

  /**
   * Writes each file to the staging table as its bytes arrive (chunk by chunk: a request's files are
   * never whole in memory). A failure, a full staging area (507) or a client that went away
   * removes every file of the job it wrote.
   */
  async stageUploads (jobId: string, files: UploadFiles): Promise<{ root: string, items: JobItem[] }> {
    const items: JobItem[] = []
    try {
      for await (const f of files) {
        const item = uploadItem(f, items.length)
        items.push(item)
        await this.staging.putStream(jobId, item.path, piecesOf(f.bytes))
      }
    } catch (err) {
      await this.staging.remove(jobId).catch((removeErr: unknown) => {
        this.logger?.warn({ err: removeErr, job: jobId }, 'an upload that failed could not remove its staged files; the staging sweep removes them within the hour')
      })
      throw err
    }
    return { root: STAGED_ROOT, items }
  }

  async unstage (jobId: string): Promise<void> {
    await this.staging.remove(jobId).catch(() => {})
  }

  /** Marks the job cancelled; every worker skips its remaining batches (those in hand finish). */
  async cancel (id: string): Promise<JobView | undefined> {
    if (await this.jobs.setStatusUnlessTerminal(id, 'cancelled')) {
      const job = await this.jobs.get(id)
      if (job?.kind === 'upload') await this.staging.remove(id).catch(() => {})
    }
    return await this.jobs.view(id)
  }

  async waitFor (id: string): Promise<JobView | undefined> {
    for (;;) {
      const view = await this.jobs.view(id)
      if (view === undefined || isTerminal(view.status) || this.closed) return view
      await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_MS))
    }
  }

  async close (): Promise<void> {
    this.closed = true
    await this.worker?.close()
    await this.queue.close()
  }
}
