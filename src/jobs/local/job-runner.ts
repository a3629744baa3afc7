/**
 * Runs index jobs one at a time, in creation order. On start it resumes the jobs left queued or
 * running by the previous process. `cancel` stops a job after its current batch; `close` stops
 * the running one the same way but leaves it queued, so it resumes on the next start.
 */
import { isTerminal, type JobView } from '../../core/types.js'
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
  async start (): Promise<void> {
    const unfinished = await this.deps.jobs.unfinished()
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

  /** Cancels a queued or running job; resolves with its view, or undefined when there is no such job. */
  async cancel (id: string): Promise<JobView | undefined> {
    const { jobs } = this.deps
    // atomic: a job that finished meanwhile stays done
    if (await jobs.setStatusUnlessTerminal(id, 'cancelled')) {
      if (this.current?.id === id) {
        this.current.controller.abort(new Error('cancelled'))
      } else {
        const at = this.queue.indexOf(id)
        if (at >= 0) this.queue.splice(at, 1)
        const job = await jobs.get(id)
        if (job !== undefined) void removeStaging(this.deps.dataDir, job)
        void this.notify(id)
      }
    }
    return await jobs.view(id)
  }

  /** Resolves with the job's view once it is done, failed or cancelled (or the runner closes). */
  async waitFor (id: string): Promise<JobView | undefined> {
    if (this.closed) return await this.deps.jobs.view(id)
    // registered before the job is read, so a job finishing in between still wakes it
    const done = new Promise<JobView | undefined>((resolve) => {
      const list = this.waiters.get(id) ?? []
      list.push(resolve)
      this.waiters.set(id, list)
    })
    await this.notify(id)
    return await done
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
    await Promise.all([...this.waiters.keys()].map(async (id) => { await this.notify(id, true) }))
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
      await this.notify(id)
    }
  }

  /** Wakes the waiters of job `id` once it is finished (or unknown, or when `force`d). */
  private async notify (id: string, force = false): Promise<void> {
    let view: JobView | undefined
    try {
      view = await this.deps.jobs.view(id)
    } catch (err) {
      // the backend failed: wake the waiters rather than leave them hanging
      this.log.warn({ err, job: id }, 'could not read the job to notify its waiters')
      view = undefined
      force = true
    }
    if (!force && view !== undefined && !isTerminal(view.status)) return
    const list = this.waiters.get(id)
    if (list === undefined) return
    this.waiters.delete(id)
    for (const w of list) w(view)
  }
}
