/**
 * Index jobs in PostgreSQL, behind the JobStore port, with the SQLite adapter's semantics: items
 * are written once, each is marked done or failed at most once (a replay never counts twice), and
 * an image write records its items in its own transaction (see completeItems). A job's errors and
 * duplicates are rows appended to job_notes (bounded), never a rewrite of the job row's lists.
 */
import type pg from 'pg'
import { MAX_JOB_DUPLICATES, MAX_JOB_ERRORS } from '../../core/limits.js'
import { isDemoJob, jobWarning, noneSkipped, type JobSkipped, type JobStatus, type JobView } from '../../core/types.js'
import { resolveItemOutcomes, type ResolvedItemOutcome } from '../job-outcomes.js'
import type { ClusterJobStore, JobDuplicate, JobError, JobItem, JobKind, JobProgress, JobRow, JobSourceRecord, NewJob } from '../ports.js'
import { withTransaction } from './pg-pool.js'

interface DbJob {
  id: string,
  kind: string,
  status: string,
  source: JobSourceRecord,
  root: string,
  cleanup: boolean,
  expanded: boolean
  total: number,
  done: number,
  indexed: number,
  duplicate: number,
  failed: number,
  attempt: number,
  batch_size: number | null,
  skipped: JobSkipped
  created_at: Date,
  updated_at: Date
}

type Queryable = Pick<pg.ClientBase, 'query'>

/** job items per INSERT (two arrays of this length travel as parameters) */
const ITEMS_PER_STATEMENT = 10_000

export class PgJobs implements ClusterJobStore {
  constructor (private readonly pool: pg.Pool) {}

  async create (job: NewJob): Promise<void> {
    await withTransaction(this.pool, async (c) => {
      await c.query('INSERT INTO jobs (id, kind, status, source, root, cleanup, expanded, total) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
        [job.id, job.kind, 'queued', JSON.stringify(job.source), job.root, job.cleanup === true, job.items !== undefined, job.items?.length ?? 0])
      if (job.items !== undefined) await insertItems(c, job.id, job.items)
    })
  }

  async get (id: string): Promise<JobRow | undefined> {
    const r = await this.pool.query<DbJob>('SELECT * FROM jobs WHERE id = $1', [id])
    return (await this.withNotes(r.rows))[0]
  }

  async view (id: string): Promise<JobView | undefined> {
    const row = await this.get(id)
    return row === undefined ? undefined : toView(row)
  }

  async list (opts: { limit: number, before?: string }): Promise<JobView[]> {
    // an unknown cursor compares as NULL and yields an empty page, as on SQLite
    const r = opts.before === undefined
      ? await this.pool.query<DbJob>('SELECT * FROM jobs ORDER BY created_at DESC, seq DESC LIMIT $1', [opts.limit])
      : await this.pool.query<DbJob>(
        'SELECT * FROM jobs WHERE (created_at, seq) < (SELECT created_at, seq FROM jobs WHERE id = $2) ORDER BY created_at DESC, seq DESC LIMIT $1',
        [opts.limit, opts.before])
    return (await this.withNotes(r.rows)).map(toView)
  }

  async unfinished (): Promise<JobRow[]> {
    const r = await this.pool.query<DbJob>("SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY created_at, seq")
    return await this.withNotes(r.rows)
  }

  /** the rows with their errors and duplicates (one query for all of them) */
  private async withNotes (rows: DbJob[]): Promise<JobRow[]> {
    if (rows.length === 0) return []
    const notes = await this.pool.query<{ job_id: string, kind: 'error' | 'duplicate', item: string, detail: string }>(
      'SELECT job_id, kind, item, detail FROM job_notes WHERE job_id = ANY($1::text[]) ORDER BY job_id, kind, n', [rows.map((r) => r.id)])
    const byJob = new Map<string, { errors: JobError[], duplicates: JobDuplicate[] }>(rows.map((r) => [r.id, { errors: [], duplicates: [] }]))
    for (const n of notes.rows) {
      const lists = byJob.get(n.job_id)!
      if (n.kind === 'error') lists.errors.push({ item: n.item, error: n.detail })
      else lists.duplicates.push({ item: n.item, id: n.detail })
    }
    return rows.map((r) => toRow(r, byJob.get(r.id)!))
  }

  async setStatus (id: string, status: JobStatus): Promise<void> {
    await this.pool.query('UPDATE jobs SET status = $2, updated_at = clock_timestamp() WHERE id = $1', [id, status])
  }

  async setStatusUnlessTerminal (id: string, status: JobStatus): Promise<boolean> {
    // one statement: a concurrent cancel either lands first (and wins) or after
    const r = await this.pool.query("UPDATE jobs SET status = $2, updated_at = clock_timestamp() WHERE id = $1 AND status NOT IN ('done', 'failed', 'cancelled')", [id, status])
    return (r.rowCount ?? 0) > 0
  }

  async addError (id: string, error: JobError): Promise<void> {
    await withTransaction(this.pool, async (c) => {
      const job = await c.query('SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE', [id])
      if (job.rows.length === 0) return
      await appendNotes(c, id, 'error', [{ item: error.item, detail: error.error }])
      await c.query('UPDATE jobs SET updated_at = clock_timestamp() WHERE id = $1', [id])
    })
  }

  async expand (id: string, items: JobItem[], skipped: JobSkipped = noneSkipped()): Promise<boolean> {
    return await withTransaction(this.pool, async (c) => {
      // the row lock makes a second planner of the same job wait here, then find it expanded
      const job = await c.query<{ expanded: boolean }>('SELECT expanded FROM jobs WHERE id = $1 FOR UPDATE', [id])
      if (job.rows[0] === undefined || job.rows[0].expanded) return false
      await c.query('DELETE FROM job_items WHERE job_id = $1', [id])
      await insertItems(c, id, items)
      await c.query('UPDATE jobs SET expanded = true, total = $2, skipped = $3, updated_at = clock_timestamp() WHERE id = $1', [id, items.length, JSON.stringify(skipped)])
      return true
    })
  }

  async attempt (id: string): Promise<number | undefined> {
    const r = await this.pool.query<{ attempt: number }>('SELECT attempt FROM jobs WHERE id = $1', [id])
    return r.rows[0]?.attempt
  }

  async setBatchSize (id: string, size: number): Promise<void> {
    // the first planner's size stays: batches already sent were numbered by it
    await this.pool.query('UPDATE jobs SET batch_size = $2 WHERE id = $1 AND batch_size IS NULL', [id, size])
  }

  async pendingBatches (): Promise<Array<{ jobId: string, attempt: number, batchSize: number, total: number, batches: number[] }>> {
    const r = await this.pool.query<{ id: string, attempt: number, batch_size: number, total: number, batches: number[] }>(
      `SELECT j.id, j.attempt, j.batch_size, j.total, array_agg(DISTINCT i.seq / j.batch_size ORDER BY i.seq / j.batch_size) AS batches
       FROM jobs j JOIN job_items i ON i.job_id = j.id AND i.status = 'pending'
       WHERE j.status = 'running' AND j.expanded AND j.batch_size IS NOT NULL
       GROUP BY j.id, j.attempt, j.batch_size, j.total`)
    return r.rows.map((row) => ({ jobId: row.id, attempt: row.attempt, batchSize: row.batch_size, total: row.total, batches: row.batches }))
  }

  async fail (id: string, error: JobError): Promise<boolean> {
    return await withTransaction(this.pool, async (c) => {
      const r = await c.query("UPDATE jobs SET status = 'failed', updated_at = clock_timestamp() WHERE id = $1 AND status NOT IN ('done', 'failed', 'cancelled')", [id])
      if ((r.rowCount ?? 0) === 0) return false
      await appendNotes(c, id, 'error', [{ item: error.item, detail: error.error }])
      return true
    })
  }

  async resume (id: string): Promise<number | undefined> {
    const r = await this.pool.query<{ attempt: number }>(
      "UPDATE jobs SET status = 'queued', attempt = attempt + 1, updated_at = clock_timestamp() WHERE id = $1 AND status = 'failed' RETURNING attempt", [id])
    return r.rows[0]?.attempt
  }

  async pending (id: string, limit: number, afterSeq = -1): Promise<Array<{ seq: number, item: JobItem }>> {
    const r = await this.pool.query<{ seq: number, item: JobItem }>(
      "SELECT seq, item FROM job_items WHERE job_id = $1 AND status = 'pending' AND seq > $3 ORDER BY seq LIMIT $2", [id, limit, afterSeq])
    return r.rows.map((row) => ({ seq: row.seq, item: row.item }))
  }

  async complete (progress: JobProgress): Promise<void> {
    await withTransaction(this.pool, async (c) => { await completeItems(c, progress.jobId, resolveItemOutcomes(progress.outcomes, [])) })
  }
}

async function insertItems (c: Queryable, jobId: string, items: JobItem[]): Promise<void> {
  for (let start = 0; start < items.length; start += ITEMS_PER_STATEMENT) {
    const chunk = items.slice(start, start + ITEMS_PER_STATEMENT)
    await c.query('INSERT INTO job_items (job_id, seq, item) SELECT $1, s, i FROM unnest($2::int[], $3::jsonb[]) AS u(s, i)',
      [jobId, chunk.map((_, i) => start + i), chunk.map((item) => JSON.stringify(item))])
  }
}

/**
 * Marks items done or failed and counts each once into indexed, duplicate or failed, inside the
 * caller's transaction; a failure is listed in `errors`, a duplicate in `duplicates` (each within
 * its bound). Items already marked are skipped; the job row is locked so concurrent batches of one
 * job add up instead of overwriting each other's lists.
 */
export async function completeItems (c: Queryable, jobId: string, outcomes: ResolvedItemOutcome[]): Promise<void> {
  const job = await c.query('SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE', [jobId])
  if (job.rows[0] === undefined || outcomes.length === 0) return
  const bySeq = new Map<number, ResolvedItemOutcome>()
  for (const o of outcomes) if (!bySeq.has(o.seq)) bySeq.set(o.seq, o)
  const list = [...bySeq.values()]
  const marked = await c.query<{ seq: number }>(
    `UPDATE job_items j SET status = o.status, error = o.error
     FROM unnest($2::int[], $3::text[], $4::text[]) AS o(seq, status, error)
     WHERE j.job_id = $1 AND j.seq = o.seq AND j.status = 'pending'
     RETURNING j.seq`,
    [jobId, list.map((o) => o.seq), list.map((o) => o.status === 'failed' ? 'failed' : 'done'), list.map((o) => o.status === 'failed' ? o.error : null)])
  const changed = new Set(marked.rows.map((r) => r.seq))
  const add = { indexed: 0, duplicate: 0, failed: 0 }
  const errors: Note[] = []
  const duplicates: Note[] = []
  for (const o of list) {
    if (!changed.has(o.seq)) continue
    add[o.status]++
    if (o.status === 'failed') errors.push({ item: o.item, detail: o.error })
    if (o.status === 'duplicate') duplicates.push({ item: o.item, detail: o.id })
  }
  await appendNotes(c, jobId, 'error', errors)
  await appendNotes(c, jobId, 'duplicate', duplicates)
  await c.query(
    `UPDATE jobs SET done = done + $2, indexed = indexed + $3, duplicate = duplicate + $4, failed = failed + $5,
       updated_at = clock_timestamp() WHERE id = $1`,
    [jobId, add.indexed + add.duplicate, add.indexed, add.duplicate, add.failed])
}

interface Note { item: string, detail: string }

/**
 * Appends errors or duplicates to job `jobId`'s notes, up to MAX_JOB_ERRORS or MAX_JOB_DUPLICATES
 * in all; the caller holds the job row's lock, so the count it reads stays true until it commits.
 */
async function appendNotes (c: Queryable, jobId: string, kind: 'error' | 'duplicate', notes: Note[]): Promise<void> {
  if (notes.length === 0) return
  const max = kind === 'error' ? MAX_JOB_ERRORS : MAX_JOB_DUPLICATES
  await c.query(
    `INSERT INTO job_notes (job_id, kind, item, detail)
     SELECT $1, $2, u.item, u.detail FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS u(item, detail, o)
     WHERE u.o <= $5 - (SELECT count(*) FROM job_notes WHERE job_id = $1 AND kind = $2)
     ORDER BY u.o`,
    [jobId, kind, notes.map((n) => n.item), notes.map((n) => n.detail), max])
}

function toView (r: JobRow): JobView {
  const warning = jobWarning(r)
  return {
    id: r.id,
    status: r.status,
    total: r.total,
    done: r.done,
    indexed: r.indexed,
    duplicate: r.duplicate,
    failed: r.failed,
    errors: r.errors,
    duplicates: r.duplicates,
    skipped: r.skipped,
    ...(warning === undefined ? {} : { warning }),
    ...(isDemoJob(r.source) ? { demo: true as const } : {}),
    createdAt: r.createdAt,
    updatedAt: r.updatedAt
  }
}

function toRow (r: DbJob, notes: { errors: JobError[], duplicates: JobDuplicate[] }): JobRow {
  return {
    id: r.id,
    kind: r.kind as JobKind,
    status: r.status as JobStatus,
    source: r.source,
    root: r.root,
    cleanup: r.cleanup,
    expanded: r.expanded,
    total: r.total,
    done: r.done,
    indexed: r.indexed,
    duplicate: r.duplicate,
    failed: r.failed,
    errors: notes.errors,
    duplicates: notes.duplicates,
    attempt: r.attempt,
    ...(r.batch_size === null ? {} : { batchSize: r.batch_size }),
    skipped: r.skipped,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString()
  }
}
