/**
 * One batch of an index job: read its files, hand the readable ones to the ingest path, and record
 * every item's outcome (unreadable files included) in the same write as the batch's images. The
 * in-process runner (run-index-job.ts) and the cluster workers (cluster/) both run batches here.
 */
import type { JobItem, JobItemOutcome, JobProgress } from '../backends/ports.js'
import { idProblem } from '../core/ids.js'
import type { IngestItem, IngestResult } from '../core/types.js'
import { DEFAULT_MAX_FILE_BYTES, readJobFile } from './sources.js'

/** Reads a batch's files: bytes, or why the file could not be read (`missing`: it is not there), one per item in order. */
export type ReadFiles = (items: JobItem[]) => Promise<Array<{ bytes: Buffer } | { error: string, missing?: boolean }>>

/** The job's side of one ingest call: each item's job key (in item order) and the outcomes already known (unreadable files). */
export interface IngestJobProgress { jobId: string, items: Array<{ seq: number, item: string }>, known: JobItemOutcome[] }

/**
 * The ingest path: stores new images and, in the same atomic write, the job's `progress` (the
 * items' outcomes, plus `progress.known`). It awaits `beforeCommit` (when given) just before that
 * write; a rejection means "do not commit".
 */
export type IngestFn = (items: IngestItem[], opts: { progress: IngestJobProgress, beforeCommit?: () => Promise<void> }) => Promise<IngestResult[]>

export type Batch = Array<{ seq: number, item: JobItem }>

export interface BatchCounts { indexed: number, duplicates: number }

export interface IngestBatchOptions {
  /** asked after the reads: false stops here, and the batch stays pending */
  mayStart?: () => boolean
  /** awaited just before the commit; a rejection means "do not commit" */
  beforeCommit?: () => Promise<void>
}

/** Reads files under `root` (re-checked against it), `concurrency` at a time. */
export function filesUnder (root: string, maxBytes = DEFAULT_MAX_FILE_BYTES, concurrency = 8): ReadFiles {
  return async (items) => await mapLimit(items, concurrency, async (item) => {
    try {
      return { bytes: await readJobFile(root, item.path, maxBytes) }
    } catch (err) {
      return (err as { code?: string }).code === 'ENOENT' ? { error: readError(err, item.path), missing: true } : { error: readError(err, item.path) }
    }
  })
}

/**
 * Runs one batch of job `jobId`: reads, ingests and commits its items with their progress.
 * `complete` records the outcomes of a batch whose files were all unreadable (no image write).
 * Resolves with how many images were new and how many were already stored.
 */
export async function ingestBatch (jobId: string, batch: Batch, read: ReadFiles, ingest: IngestFn,
  complete: (progress: JobProgress) => Promise<void>, opts: IngestBatchOptions = {}): Promise<BatchCounts> {
  const counts: BatchCounts = { indexed: 0, duplicates: 0 }
  const reads = await read(batch.map((b) => b.item))
  const known: JobItemOutcome[] = []
  const ok: Array<{ b: Batch[number], bytes: Buffer }> = []
  batch.forEach((b, i) => {
    const r = reads[i]
    const name = b.item.name ?? b.item.path
    // only an id taken from a path can be invalid here: items' own ids were checked when the job was created
    const badId = b.item.id === undefined ? undefined : idProblem(b.item.id)
    if (r === undefined || !('bytes' in r)) known.push({ seq: b.seq, item: name, status: 'failed', error: r?.error ?? 'not read' })
    else if (badId !== undefined) known.push({ seq: b.seq, item: name, status: 'failed', error: `the path cannot be the id "${b.item.id!}": an id ${badId}` })
    else ok.push({ b, bytes: r.bytes })
  })
  if (opts.mayStart?.() === false) return counts
  if (ok.length === 0) {
    await opts.beforeCommit?.()
    await complete({ jobId, outcomes: known })
    return counts
  }
  const items: IngestItem[] = ok.map((r) => {
    // the source is what the job calls the file: its path under the root, or an upload's own file name
    const it: IngestItem = { bytes: r.bytes, source: r.b.item.name ?? r.b.item.path }
    if (r.b.item.id !== undefined) it.id = r.b.item.id
    if (r.b.item.metadata !== undefined) it.metadata = r.b.item.metadata
    return it
  })
  const progress: IngestJobProgress = { jobId, items: ok.map((r) => ({ seq: r.b.seq, item: r.b.item.name ?? r.b.item.path })), known }
  const results = await ingest(items, { progress, ...(opts.beforeCommit === undefined ? {} : { beforeCommit: opts.beforeCommit }) })
  for (const r of results) {
    if (r.status === 'indexed') counts.indexed++
    else if (r.status === 'duplicate') counts.duplicates++
  }
  return counts
}

function readError (err: unknown, rel: string): string {
  const code = (err as { code?: string }).code
  if (code === 'ENOENT') return `file not found: ${rel}`
  if (code === 'EACCES' || code === 'EPERM') return `permission denied: ${rel}`
  return (err as Error).message
}

async function mapLimit<T, R> (items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane))
  return out
}
