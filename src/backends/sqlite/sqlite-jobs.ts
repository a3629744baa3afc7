/** Index jobs in SQLite, behind the async JobStore port. */
import { isTerminal, type Store } from './store/index.js'
import type { JobSkipped, JobStatus, JobView } from '../../core/types.js'
import { resolveItemOutcomes } from '../job-outcomes.js'
import type { JobError, JobItem, JobProgress, JobRow, JobStore, NewJob } from '../ports.js'

export class SqliteJobs implements JobStore {
  constructor (private readonly store: Store) {}

  async create (job: NewJob): Promise<void> {
    this.store.transaction(() => { this.store.jobs.create(job) })
  }

  async get (id: string): Promise<JobRow | undefined> {
    return this.store.jobs.get(id)
  }

  async view (id: string): Promise<JobView | undefined> {
    return this.store.jobs.view(id)
  }

  async list (opts: { limit: number, before?: string }): Promise<JobView[]> {
    return this.store.jobs.list(opts.limit, opts.before)
  }

  async unfinished (): Promise<JobRow[]> {
    return this.store.jobs.unfinished()
  }

  async setStatus (id: string, status: JobStatus): Promise<void> {
    this.store.jobs.setStatus(id, status)
  }

  async setStatusUnlessTerminal (id: string, status: JobStatus): Promise<boolean> {
    return this.store.transaction(() => {
      const job = this.store.jobs.get(id)
      if (job === undefined || isTerminal(job.status)) return false
      this.store.jobs.setStatus(id, status)
      return true
    })
  }

  async addError (id: string, error: JobError): Promise<void> {
    this.store.jobs.addError(id, error)
  }

  async expand (id: string, items: JobItem[], skipped?: JobSkipped): Promise<boolean> {
    return this.store.transaction(() => this.store.jobs.expand(id, items, skipped))
  }

  async pending (id: string, limit: number, afterSeq = -1): Promise<Array<{ seq: number, item: JobItem }>> {
    return this.store.jobs.pending(id, limit, afterSeq)
  }

  async complete (progress: JobProgress): Promise<void> {
    const items = resolveItemOutcomes(progress.outcomes, [])
    this.store.transaction(() => { this.store.jobs.complete(progress.jobId, items) })
  }
}
