/**
 * Who runs the index jobs the services create: this process alone (LocalJobs, the embedded SQLite
 * backend), or the workers of the shared queue in PostgreSQL (cluster/cluster-jobs.ts). The
 * services create, stage, cancel and wait through this one interface either way.
 */
import { rm } from 'node:fs/promises'
import type { JobItem, NewJob } from '../backends/ports.js'
import type { JobView } from '../core/types.js'
import type { JobRunner } from './local/job-runner.js'
import { removeStaleStaging, stageUploads, type UploadFiles } from './staging.js'
import type { JobStore } from '../backends/ports.js'
import type { Logger } from '../core/types.js'

export interface JobExecutor {
  /** Starts running jobs (resuming those a previous run left unfinished). */
  start (): Promise<void>
  /** Stores a new job and queues it. */
  submit (job: NewJob): Promise<void>
  /**
   * Stages the files of an upload job where its runners can read them, each as it arrives; the
   * items refer to them. On a throw nothing it staged is left.
   */
  stageUploads (jobId: string, files: UploadFiles): Promise<{ root: string, items: JobItem[] }>
  /** Removes what stageUploads stored (the job could not be created). */
  unstage (jobId: string, root: string): Promise<void>
  /** Cancels a queued or running job; resolves with its view, or undefined when there is no such job. */
  cancel (id: string): Promise<JobView | undefined>
  /** Runs a failed job again (cluster mode only); `resumed` is false when the job had not failed. */
  resume?: (id: string) => Promise<{ view: JobView | undefined, resumed: boolean }>
  /** Resolves with the job's view once it is done, failed or cancelled (or the executor closes). */
  waitFor (id: string): Promise<JobView | undefined>
  close (): Promise<void>
}

/** Jobs run by this process's JobRunner, uploads staged under DATA_DIR/uploads. */
export class LocalJobs implements JobExecutor {
  constructor (private readonly runner: JobRunner, private readonly jobs: JobStore, private readonly dataDir: string, private readonly logger: Logger) {}

  async start (): Promise<void> {
    await removeStaleStaging(this.dataDir, this.jobs).catch((err: unknown) => { this.logger.warn({ err }, 'could not clean DATA_DIR/uploads') })
    await this.runner.start()
  }

  async submit (job: NewJob): Promise<void> {
    await this.jobs.create(job)
    this.runner.enqueue(job.id)
  }

  async stageUploads (jobId: string, files: UploadFiles): Promise<{ root: string, items: JobItem[] }> {
    return await stageUploads(this.dataDir, jobId, files)
  }

  async unstage (_jobId: string, root: string): Promise<void> {
    await rm(root, { recursive: true, force: true }).catch(() => {})
  }

  async cancel (id: string): Promise<JobView | undefined> { return await this.runner.cancel(id) }
  async waitFor (id: string): Promise<JobView | undefined> { return await this.runner.waitFor(id) }
  async close (): Promise<void> { await this.runner.close() }
}
