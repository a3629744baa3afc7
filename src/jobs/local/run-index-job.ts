/**
 * One index job, as a resumable function: it takes the job's pending items in fixed batches,
 * reads the files, and hands them to the same ingest path as a synchronous upload. Each batch's
 * items are marked done/failed in the same backend write that stores its images, so a job that
 * stops (crash, shutdown, abort) resumes exactly at the first item not yet stored. Content that is
 * already indexed counts as done (sha256 dedupe), so running a job again indexes nothing twice.
 *
 * Batches are pipelined (DEFAULT_PIPELINE_DEPTH in flight): batch N+1's reads and decodes overlap batch N's
 * encode and commit. Commits stay in batch order (each waits for the one before), so the stored
 * items are always a prefix of the job and an interruption loses nothing acknowledged.
 */
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { NotFoundError } from '../../core/errors.js'
import { DEFAULT_INDEX_BATCH_SIZE } from '../../core/limits.js'
import type { JobItem, JobRow, JobStore } from '../../backends/ports.js'
import { isTerminal, type JobStatus, type Logger } from '../../core/types.js'
import { filesUnder, ingestBatch, type Batch, type IngestFn } from '../ingest-batch.js'
import { DEFAULT_MAX_FILE_BYTES, idFromPath, skipCounter, walkImages } from '../sources.js'
import { UPLOADS_DIR } from '../staging.js'

export type { IngestFn, IngestJobProgress } from '../ingest-batch.js'

export interface IndexJobDeps {
  jobs: JobStore
  /** DATA_DIR: finished upload jobs' staged files under DATA_DIR/uploads are removed */
  dataDir: string
  ingest: IngestFn
  /**
   * Called as a job starts running, before its directory is listed: the ingest path starts what
   * its first batch will need (the background ingest process: its start and model load took longer
   * than preparing a dozen photos) while the job lists, reads and hashes.
   */
  warmUp?: () => void
  /** progress is logged on `logger.child({ job })` */
  logger: Logger
  /** items per batch (default 32) */
  batchSize?: number
  /** files read at once per batch (default 8) */
  readConcurrency?: number
  /** batches in flight at once (default 2; 1 runs them one after another) */
  pipelineDepth?: number
  /** largest file read (default 64 MiB); larger ones fail with PAYLOAD_TOO_LARGE */
  maxFileBytes?: number
}

export interface IndexJobResult {
  status: JobStatus
  total: number
  /** items stored or already present, over the job's whole life */
  done: number
  failed: number
  /** in this run: new images, and items whose content was already indexed */
  indexed: number
  duplicates: number
}

export const DEFAULT_BATCH_SIZE = DEFAULT_INDEX_BATCH_SIZE
export const DEFAULT_PIPELINE_DEPTH = 2

/**
 * Runs (or resumes) job `jobId` until its items are all processed or `signal` aborts.
 * On abort it stops after the batches in progress; the job goes back to `queued` (it resumes on the
 * next start) unless it was marked `cancelled` meanwhile (see JobRunner.cancel). A job that is
 * already done, failed or cancelled returns at once.
 * @throws NotFoundError when there is no such job
 */
export async function runIndexJob (jobId: string, deps: IndexJobDeps, { signal }: { signal?: AbortSignal } = {}): Promise<IndexJobResult> {
  const { jobs } = deps
  const job = await jobs.get(jobId)
  if (job === undefined) throw new NotFoundError(`no index job "${jobId}"`)
  const counts = { indexed: 0, duplicates: 0 }
  if (isTerminal(job.status)) return result(job, counts)
  const log = deps.logger.child({ job: jobId })
  // a cancel that landed since the read above wins: nothing runs
  if (!(await jobs.setStatusUnlessTerminal(jobId, 'running'))) {
    await removeStaging(deps.dataDir, job)
    return result(await current(jobs, jobId), counts)
  }
  const started = Date.now()
  let lastLog = 0
  deps.warmUp?.()

  try {
    if (!job.expanded) {
      const { source } = job
      const directory = 'directory' in source ? source.directory : '.'
      const byPath = 'directory' in source && source.idFromPath === true
      const items: JobItem[] = []
      const { onSkip, skipped } = skipCounter()
      for await (const rel of walkImages(job.root, directory, signal, onSkip)) items.push(byPath ? { path: rel, id: idFromPath(rel) } : { path: rel })
      if (signal?.aborted !== true) {
        await jobs.expand(jobId, items, skipped)
        log.info({ total: items.length, directory, skipped: { notImage: skipped.notImage, unreadable: skipped.unreadable } }, 'index job: directory listed')
      }
    }
    await runBatches(jobId, job, deps, counts, signal, () => {
      if (Date.now() - lastLog > 5000) {
        lastLog = Date.now()
        void jobs.get(jobId).then((now) => {
          if (now !== undefined) log.info({ done: now.done, failed: now.failed, total: now.total, indexed: counts.indexed, duplicates: counts.duplicates }, 'index job progress')
        }, () => {})
      }
    })
  } catch (err) {
    log.error({ err }, 'index job failed')
    await jobs.addError(jobId, { item: '(job)', error: (err as Error).message })
    await jobs.setStatusUnlessTerminal(jobId, 'failed')
    await removeStaging(deps.dataDir, job)
    return result(await current(jobs, jobId), counts)
  }

  const after = await current(jobs, jobId)
  if (after.status === 'cancelled') {
    log.info({ done: after.done, failed: after.failed, total: after.total }, 'index job cancelled')
  } else if (signal?.aborted === true) {
    if (await jobs.setStatusUnlessTerminal(jobId, 'queued')) {
      log.info({ done: after.done, total: after.total }, 'index job interrupted; it resumes on the next start')
      return result(await current(jobs, jobId), counts)
    }
  } else if (await jobs.setStatusUnlessTerminal(jobId, 'done')) {
    log.info({ done: after.done, failed: after.failed, total: after.total, ...counts, ms: Date.now() - started }, 'index job done')
  }
  await removeStaging(deps.dataDir, job)
  return result(await current(jobs, jobId), counts)
}

async function current (jobs: JobStore, id: string): Promise<JobRow> {
  const job = await jobs.get(id)
  if (job === undefined) throw new NotFoundError(`index job "${id}" vanished`)
  return job
}

type Counts = { indexed: number, duplicates: number }

/** Thrown at a batch's commit turn when an earlier batch failed: it stays pending. */
class NotCommitted extends Error {}

/** What a batch asks before it ingests (may it start?) and before it commits (its turn; rejects with NotCommitted). */
interface BatchGate { mayStart: () => boolean, turn: () => Promise<void> }

/**
 * Takes pending items in batches, keeping up to pipelineDepth batches in flight. Each batch commits
 * only after the one before it has settled, and not at all once one has failed. On abort no batch
 * starts ingesting any more (one whose files were being read stays pending); the ones already
 * ingesting finish and commit. Returns once every started batch has settled; rethrows the first failure.
 */
async function runBatches (jobId: string, job: JobRow, deps: IndexJobDeps, counts: Counts, signal: AbortSignal | undefined, progress: () => void): Promise<void> {
  const batchSize = Math.max(1, deps.batchSize ?? DEFAULT_BATCH_SIZE)
  const depth = Math.max(1, deps.pipelineDepth ?? DEFAULT_PIPELINE_DEPTH)
  const inFlight = new Set<number>()
  const running = new Set<Promise<void>>()
  let previous: Promise<void> = Promise.resolve()
  let failure: { err: unknown } | undefined
  while (signal?.aborted !== true && failure === undefined) {
    // the in-flight items are the first pending ones: ask for enough to get past them. Skip those in
    // flight when asking: a batch that commits while the answer is on its way may still be in it
    const skip = new Set(inFlight)
    const batch = (await deps.jobs.pending(jobId, batchSize * (running.size + 1))).filter((b) => !skip.has(b.seq)).slice(0, batchSize)
    if (batch.length === 0) break
    for (const b of batch) inFlight.add(b.seq)
    const before = previous
    const gate: BatchGate = {
      mayStart: () => failure === undefined && signal?.aborted !== true,
      turn: async () => {
        await before
        if (failure !== undefined) throw new NotCommitted('an earlier batch failed')
      }
    }
    const task: Promise<void> = runBatch(jobId, job, batch, deps, counts, gate)
      .catch((err: unknown) => { if (!(err instanceof NotCommitted)) failure ??= { err } })
      .finally(() => {
        for (const b of batch) inFlight.delete(b.seq)
        running.delete(task)
        progress()
      })
    previous = task
    running.add(task)
    if (running.size >= depth) await Promise.race(running)
  }
  await Promise.all(running)
  if (failure !== undefined) throw failure.err
}

async function runBatch (jobId: string, job: JobRow, batch: Batch, deps: IndexJobDeps, counts: Counts, gate: BatchGate): Promise<void> {
  const read = filesUnder(job.root, deps.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES, deps.readConcurrency ?? 8)
  const done = await ingestBatch(jobId, batch, read, deps.ingest, async (progress) => { await deps.jobs.complete(progress) },
    { mayStart: gate.mayStart, beforeCommit: gate.turn })
  counts.indexed += done.indexed
  counts.duplicates += done.duplicates
}

/** Removes the staged upload folder of a finished upload job (never anything outside DATA_DIR/uploads). */
export async function removeStaging (dataDir: string, job: JobRow): Promise<void> {
  if (!job.cleanup) return
  const uploads = path.join(path.resolve(dataDir), UPLOADS_DIR) + path.sep
  if (!path.resolve(job.root).startsWith(uploads)) return
  await rm(job.root, { recursive: true, force: true }).catch(() => {})
}

function result (job: JobRow, counts: { indexed: number, duplicates: number }): IndexJobResult {
  return { status: job.status, total: job.total, done: job.done, failed: job.failed, ...counts }
}
