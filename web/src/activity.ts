/** What indexing is running now, as the jobs panel last saw it: the results' empty state reads it. */
import type { JobView } from './api.js'

const running = new Map<string, JobView>()

/** Records a job's latest view; finished jobs drop out. */
export function noteJob (v: JobView): void {
  if (v.status === 'queued' || v.status === 'running') running.set(v.id, v)
  else running.delete(v.id)
}

/** 'demo' while the demo pool is being indexed, 'other' while another job runs, undefined when none runs */
export function indexingNow (): 'demo' | 'other' | undefined {
  if (running.size === 0) return undefined
  return [...running.values()].some((v) => v.demo === true) ? 'demo' : 'other'
}
