/** Turns the job progress of a write into per-item results, once the write knows each row's outcome. */
import type { JobItemOutcome, WriteOutcome } from './ports.js'

export interface ResolvedItemOutcome { seq: number, item: string, status: 'indexed' | 'duplicate' | 'failed', error?: string }

/** Each outcome with its final status: a `row` reference takes the status of that row's write. */
export function resolveItemOutcomes (outcomes: JobItemOutcome[], writes: WriteOutcome[]): ResolvedItemOutcome[] {
  return outcomes.map((o) => {
    if (!('row' in o)) return o.error === undefined ? { seq: o.seq, item: o.item, status: o.status } : { seq: o.seq, item: o.item, status: o.status, error: o.error }
    const w = writes[o.row]
    if (w === undefined) return { seq: o.seq, item: o.item, status: 'failed', error: 'not processed' }
    return w.status === 'failed' ? { seq: o.seq, item: o.item, status: 'failed', error: w.error } : { seq: o.seq, item: o.item, status: w.status }
  })
}
