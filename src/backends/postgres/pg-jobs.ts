/**
 * Index jobs in PostgreSQL, behind the JobStore port, with the SQLite adapter's semantics: items
 * are written once, each is marked done or failed at most once (a replay never counts twice), and
 * an image write records its items in its own transaction (see completeItems).
 */
import type pg from 'pg'
import { MAX_JOB_DUPLICATES, MAX_JOB_ERRORS } from '../../core/limits.js'
import { isDemoJob, jobWarning, noneSkipped, type JobSkipped, type JobStatus, type JobView } from '../../core/types.js'
import { resolveItemOutcomes, type ResolvedItemOutcome } from '../job-outcomes.js'
import type { JobDuplicate, JobError, JobItem, JobKind, JobProgress, JobRow, JobSourceRecord, JobStore, NewJob } from '../ports.js'
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
  errors: JobError[],
  duplicates: JobDuplicate[],
  skipped: JobSkipped
  created_at: Date,
  updated_at: Date
}

type Queryable = Pick<pg.ClientBase, 'query'>

/** job items per INSERT (two arrays of this length travel as parameters) */
const ITEMS_PER_STATEMENT = 10_000

export class PgJobs implements JobStore {
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
    return r.rows[0] === undefined ? undefined : toRow(r.rows[0])
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
    return r.rows.map((j) => toView(toRow(j)))
  }

  async unfinished (): Promise<JobRow[]> {
    const r = await this.pool.query<DbJob>("SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY created_at, seq")
    return r.rows.map(toRow)
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
    await this.pool.query(
      'UPDATE jobs SET errors = errors || jsonb_build_array($2::jsonb), updated_at = clock_timestamp() WHERE id = $1 AND jsonb_array_length(errors) < $3',
      [id, JSON.stringify(error), MAX_JOB_ERRORS])
  }

  async expand (id: string, items: JobItem[], skipped: JobSkipped = noneSkipped()): Promise<void> {
    await withTransaction(this.pool, async (c) => {
      await c.query('DELETE FROM job_items WHERE job_id = $1', [id])
      await insertItems(c, id, items)
      await c.query('UPDATE jobs SET expanded = true, total = $2, skipped = $3, updated_at = clock_timestamp() WHERE id = $1', [id, items.length, JSON.stringify(skipped)])
    })
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
  const job = await c.query<{ errors: JobError[], duplicates: JobDuplicate[] }>('SELECT errors, duplicates FROM jobs WHERE id = $1 FOR UPDATE', [jobId])
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
  const { errors, duplicates } = job.rows[0]
  for (const o of list) {
    if (!changed.has(o.seq)) continue
    add[o.status]++
    if (o.status === 'failed' && errors.length < MAX_JOB_ERRORS) errors.push({ item: o.item, error: o.error })
    if (o.status === 'duplicate' && duplicates.length < MAX_JOB_DUPLICATES) duplicates.push({ item: o.item, id: o.id })
  }
  await c.query(
    `UPDATE jobs SET done = done + $2, indexed = indexed + $3, duplicate = duplicate + $4, failed = failed + $5,
       errors = $6, duplicates = $7, updated_at = clock_timestamp() WHERE id = $1`,
    [jobId, add.indexed + add.duplicate, add.indexed, add.duplicate, add.failed, JSON.stringify(errors), JSON.stringify(duplicates)])
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

function toRow (r: DbJob): JobRow {
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
    errors: r.errors,
    duplicates: r.duplicates,
    skipped: r.skipped,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString()
  }
}
