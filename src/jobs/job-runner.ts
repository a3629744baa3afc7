/**
 * Runs index jobs one at a time, in creation order. On start it resumes the jobs left queued or
 * running by the previous process. `cancel` stops a job after its current batch; `close` stops
 * the running one the same way but leaves it queued, so it resumes on the next start.
 */
import type { JobView } from '../services/types.js'
import { isTerminal } from '../storage/index.js'
import { removeStaging, runIndexJob, type IndexJobDeps } from './run-index-job.js'

export class JobRunner {
  private readonly queue: string[] = []
  private current: { id: string, controller: AbortController } | undefined
  private loop: Promise<void> | undefined
  private closed = false
  private readonly waiters = new Map<string, Array<(v: JobView | undefined) => void>>()
  private readonly idleWaiters: Array<() => void> = []
  private readonly log: IndexJobDeps['logger']

  constructor (private readonly deps: IndexJobDeps) {
    this.log = deps.logger
  }

  /** Queues the jobs a previous process left unfinished (oldest first) and starts working. */
  start (): void {
    const unfinished = this.deps.store.jobs.unfinished()
    for (const job of unfinished) if (!this.queue.includes(job.id)) this.queue.push(job.id)
    if (unfinished.length > 0) this.log.info({ jobs: unfinished.map((j) => j.id) }, 'resuming unfinished index jobs')
    this.kick()
  }

  /** Queues a job created in the store. */
  enqueue (id: string): void {
    if (this.closed) return
    if (this.current?.id !== id && !this.queue.includes(id)) this.queue.push(id)
    this.kick()
  }

  /** Cancels a queued or running job; returns its view, or undefined when there is no such job. */
  cancel (id: string): JobView | undefined {
    const { store } = this.deps
    const job = store.jobs.get(id)
    if (job === undefined) return undefined
    if (!isTerminal(job.status)) {
      store.jobs.setStatus(id, 'cancelled')
      if (this.current?.id === id) {
        this.current.controller.abort(new Error('cancelled'))
      } else {
        const at = this.queue.indexOf(id)
        if (at >= 0) this.queue.splice(at, 1)
        void removeStaging(store, job)
        this.notify(id)
      }
    }
    return store.jobs.view(id)
  }

  /** Resolves with the job's view once it is done, failed or cancelled (or the runner closes). */
  waitFor (id: string): Promise<JobView | undefined> {
    const view = this.deps.store.jobs.view(id)
    if (view === undefined || isTerminal(view.status) || this.closed) return Promise.resolve(view)
    return new Promise((resolve) => {
      const list = this.waiters.get(id) ?? []
      list.push(resolve)
      this.waiters.set(id, list)
    })
  }

  /** Resolves when no job is queued or running. */
  idle (): Promise<void> {
    if (this.loop === undefined) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  /** the id of the job running now */
  get running (): string | undefined { return this.current?.id }

  /** Stops after the current batch; the interrupted job stays queued for the next start. */
  async close (): Promise<void> {
    this.closed = true
    this.queue.length = 0
    this.current?.controller.abort(new Error('shutting down'))
    await this.loop
    for (const id of [...this.waiters.keys()]) this.notify(id, true)
  }

  private kick (): void {
    if (this.loop !== undefined || this.closed || this.queue.length === 0) return
    this.loop = this.drain().finally(() => {
      this.loop = undefined
      for (const w of this.idleWaiters.splice(0)) w()
      if (!this.closed && this.queue.length > 0) this.kick()
    })
  }

  private async drain (): Promise<void> {
    while (!this.closed) {
      const id = this.queue.shift()
      if (id === undefined) return
      const controller = new AbortController()
      this.current = { id, controller }
      try {
        await runIndexJob(id, this.deps, { signal: controller.signal })
      } catch (err) {
        this.log.error({ err, job: id }, 'index job crashed')
      } finally {
        this.current = undefined
      }
      this.notify(id)
    }
  }

  private notify (id: string, force = false): void {
    const list = this.waiters.get(id)
    if (list === undefined) return
    const view = this.deps.store.jobs.view(id)
    if (!force && view !== undefined && !isTerminal(view.status)) return
    this.waiters.delete(id)
    for (const w of list) w(view)
  }
}
