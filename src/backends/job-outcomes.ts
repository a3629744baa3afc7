/** Turns the job progress of a write into per-item results, once the write knows each row's outcome. */
import type { JobItemOutcome, WriteOutcome } from './ports.js'

/** An item's final outcome: a failure has its `error`, a duplicate the stored `id` it repeats. */
export type ResolvedItemOutcome =
  | { seq: number, item: string, status: 'indexed' }
  | { seq: number, item: string, status: 'duplicate', id: string }
  | { seq: number, item: string, status: 'failed', error: string }

/**
 * Each outcome with its final status: a `row` reference takes the status of that row's write (a
 * `duplicate` reference becomes a duplicate of the id the row got). A duplicate known without its
 * id counts as a duplicate of "" rather than failing: the count matters more than the name.
 */
export function resolveItemOutcomes (outcomes: JobItemOutcome[], writes: WriteOutcome[]): ResolvedItemOutcome[] {
  return outcomes.map((o): ResolvedItemOutcome => {
    const { seq, item } = o
    if (!('row' in o)) {
      if (o.status === 'failed') return { seq, item, status: 'failed', error: o.error ?? 'failed' }
      return o.status === 'duplicate' ? { seq, item, status: 'duplicate', id: o.id ?? '' } : { seq, item, status: 'indexed' }
    }
    const w = writes[o.row]
    if (w === undefined) return { seq, item, status: 'failed', error: 'not processed' }
    if (w.status === 'failed') return { seq, item, status: 'failed', error: w.error }
    if (w.status === 'duplicate' || o.duplicate === true) return { seq, item, status: 'duplicate', id: w.id }
    return { seq, item, status: 'indexed' }
  })
}
