/**
 * Prepares a list a window at a time and consumes each window in order while the next one prepares,
 * so at most two windows of prepared items are alive at once, however long the list.
 *
 * Why: the background ingest process decoded a job's whole batch (32 images) before its first
 * vision run, and held every image's pixels (1 MiB at 289 px, plus its thumbnail) until the last
 * run. For the full-size vision tower that took the process from 378 MiB for one image to 445 MiB
 * for a batch (236 MiB of weights). Windowed, the decodes also overlap the runs.
 * @param size items per window (at least 1)
 * @returns what `consume` gives for each window, in the items' order
 */
export async function prepareAhead<I, P, R> (items: readonly I[], size: number, prepare: (item: I) => Promise<P>, consume: (prepared: P[]) => Promise<R[]>): Promise<R[]> {
  const step = Math.max(1, Math.floor(size))
  const window = async (from: number): Promise<P[]> => await Promise.all(items.slice(from, from + step).map(prepare))
  const out: R[] = []
  let next = window(0)
  for (let at = 0; at < items.length; at += step) {
    const prepared = await next
    if (at + step < items.length) {
      next = window(at + step)
      next.catch(() => {}) // awaited on the next turn; a consume that throws first must not leave it unhandled
    }
    out.push(...await consume(prepared))
  }
  return out
}
