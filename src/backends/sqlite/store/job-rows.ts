/**
 * `jobs` and `job_items`: a job's items are written once, then each is marked done or failed
 * in the same transaction that stores its image, so a job resumes exactly where it stopped.
 * The job row counts them as indexed, duplicate or failed (done = indexed + duplicate).
 */
import type Database from 'better-sqlite3'
import type { ResolvedItemOutcome } from '../../job-outcomes.js'
import type { JobKind, JobItem, JobError, JobDuplicate, JobRow, JobSourceRecord, NewJob } from '../../ports.js'
import { MAX_JOB_DUPLICATES, MAX_JOB_ERRORS } from '../../../core/limits.js'
import { isDemoJob, jobWarning, noneSkipped, type JobSkipped, type JobStatus, type JobView } from '../../../core/types.js'

export { MAX_JOB_DUPLICATES, MAX_JOB_ERRORS }

export type { JobKind, JobItem, JobError, JobDuplicate, JobRow, NewJob } from '../../ports.js'
/** one item's final outcome (see resolveItemOutcomes) */
export type ItemOutcome = ResolvedItemOutcome

interface RawJob {
  id: string,
  kind: string,
  status: string,
  source: string,
  root: string,
  cleanup: number,
  expanded: number
  total: number,
  done: number,
  indexed: number,
  duplicate: number,
  failed: number,
  errors: string,
  duplicates: string,
  skipped: string
  created_at: string,
  updated_at: string
}

export { isTerminal } from '../../../core/types.js'

export class JobRows {
  private readonly st

  constructor (private readonly db: Database.Database) {
    this.st = {
      insertJob: db.prepare<[string, string, string, string, string, number, number, number, string, string]>(
        `INSERT INTO jobs (id, kind, status, source, root, cleanup, expanded, total, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      insertItem: db.prepare<[string, number, string]>('INSERT INTO job_items (job_id, seq, item) VALUES (?, ?, ?)'),
      get: db.prepare<[string], RawJob>('SELECT * FROM jobs WHERE id = ?'),
      unfinished: db.prepare<[], RawJob>("SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY created_at, rowid"),
      all: db.prepare<[], RawJob>('SELECT * FROM jobs ORDER BY created_at, rowid'),
      newest: db.prepare<[number], RawJob>('SELECT * FROM jobs ORDER BY created_at DESC, rowid DESC LIMIT ?'),
      newestBefore: db.prepare<[string, string, string, number], RawJob>(
        'SELECT * FROM jobs WHERE created_at < ? OR (created_at = ? AND rowid < (SELECT rowid FROM jobs WHERE id = ?)) ORDER BY created_at DESC, rowid DESC LIMIT ?'),
      count: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM jobs'),
      setStatus: db.prepare<[string, string, string]>('UPDATE jobs SET status = ?, updated_at = ? WHERE id = ?'),
      setErrors: db.prepare<[string, string, string]>('UPDATE jobs SET errors = ?, updated_at = ? WHERE id = ?'),
      expand: db.prepare<[number, string, string, string]>('UPDATE jobs SET expanded = 1, total = ?, skipped = ?, updated_at = ? WHERE id = ?'),
      clearItems: db.prepare<[string]>('DELETE FROM job_items WHERE job_id = ?'),
      pending: db.prepare<[string, number, number], { seq: number, item: string }>(
        "SELECT seq, item FROM job_items WHERE job_id = ? AND status = 'pending' AND seq > ? ORDER BY seq LIMIT ?"),
      markItem: db.prepare<[string, string | null, string, number]>(
        "UPDATE job_items SET status = ?, error = ? WHERE job_id = ? AND seq = ? AND status = 'pending'"),
      counts: db.prepare<[number, number, number, number, string, string, string, string]>(
        `UPDATE jobs SET done = done + ?, indexed = indexed + ?, duplicate = duplicate + ?, failed = failed + ?,
         errors = ?, duplicates = ?, updated_at = ? WHERE id = ?`)
    }
  }

  /** Creates a queued job; without `items` it is a directory job whose files are listed later by `expand`. */
  create (job: NewJob): void {
    const now = new Date().toISOString()
    this.db.transaction(() => {
      this.st.insertJob.run(job.id, job.kind, 'queued', JSON.stringify(job.source), job.root, job.cleanup === true ? 1 : 0,
        job.items === undefined ? 0 : 1, job.items?.length ?? 0, now, now)
      if (job.items !== undefined) this.insertItems(job.id, job.items)
    })()
  }

  /** Lists a directory job's files, records what the listing skipped and sets its total, once: a job already expanded is left as it is (returns false). */
  expand (id: string, items: JobItem[], skipped: JobSkipped = noneSkipped()): boolean {
    return this.db.transaction(() => {
      const job = this.st.get.get(id)
      if (job === undefined || job.expanded === 1) return false
      this.st.clearItems.run(id)
      this.insertItems(id, items)
      this.st.expand.run(items.length, JSON.stringify(skipped), new Date().toISOString(), id)
      return true
    })()
  }

  private insertItems (id: string, items: JobItem[]): void {
    items.forEach((item, i) => { this.st.insertItem.run(id, i, JSON.stringify(item)) })
  }

  get (id: string): JobRow | undefined {
    const r = this.st.get.get(id)
    return r === undefined ? undefined : toRow(r)
  }

  view (id: string): JobView | undefined {
    const r = this.get(id)
    return r === undefined ? undefined : toView(r)
  }

  /** queued and running jobs, oldest first */
  unfinished (): JobRow[] {
    return this.st.unfinished.all().map(toRow)
  }

  /** up to `limit` jobs, newest first; `before` is the id of the previous page's last job */
  list (limit: number, before?: string): JobView[] {
    let rows: RawJob[]
    if (before === undefined) rows = this.st.newest.all(limit)
    else {
      const from = this.st.get.get(before)
      rows = from === undefined ? [] : this.st.newestBefore.all(from.created_at, from.created_at, before, limit)
    }
    return rows.map((r) => toView(toRow(r)))
  }

  all (): JobRow[] {
    return this.st.all.all().map(toRow)
  }

  count (): number {
    return this.st.count.get()!.n
  }

  setStatus (id: string, status: JobStatus): void {
    this.st.setStatus.run(status, new Date().toISOString(), id)
  }

  /** Appends a job-level error (kept within MAX_JOB_ERRORS). */
  addError (id: string, error: JobError): void {
    const job = this.get(id)
    if (job === undefined || job.errors.length >= MAX_JOB_ERRORS) return
    this.st.setErrors.run(JSON.stringify([...job.errors, error]), new Date().toISOString(), id)
  }

  /** up to `limit` items still pending with a seq above `afterSeq`, in order */
  pending (id: string, limit: number, afterSeq = -1): Array<{ seq: number, item: JobItem }> {
    return this.st.pending.all(id, afterSeq, limit).map((r) => ({ seq: r.seq, item: JSON.parse(r.item) as JobItem }))
  }

  /**
   * Marks items done or failed and updates the job's counts, errors and duplicates. Items already
   * marked are skipped, so a replay never counts twice. Call inside the transaction that stores the images.
   */
  complete (id: string, outcomes: ItemOutcome[]): void {
    const job = this.get(id)
    if (job === undefined) return
    const add = { indexed: 0, duplicate: 0, failed: 0 }
    const { errors, duplicates } = job
    for (const o of outcomes) {
      const failed = o.status === 'failed'
      const changed = this.st.markItem.run(failed ? 'failed' : 'done', failed ? o.error : null, id, o.seq).changes
      if (changed === 0) continue
      add[o.status]++
      if (o.status === 'failed' && errors.length < MAX_JOB_ERRORS) errors.push({ item: o.item, error: o.error })
      if (o.status === 'duplicate' && duplicates.length < MAX_JOB_DUPLICATES) duplicates.push({ item: o.item, id: o.id })
    }
    this.st.counts.run(add.indexed + add.duplicate, add.indexed, add.duplicate, add.failed,
      JSON.stringify(errors), JSON.stringify(duplicates), new Date().toISOString(), id)
  }
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

function toRow (r: RawJob): JobRow {
  return {
    id: r.id,
    kind: r.kind as JobKind,
    status: r.status as JobStatus,
    source: JSON.parse(r.source) as JobSourceRecord,
    root: r.root,
    cleanup: r.cleanup === 1,
    expanded: r.expanded === 1,
    total: r.total,
    done: r.done,
    indexed: r.indexed,
    duplicate: r.duplicate,
    failed: r.failed,
    errors: JSON.parse(r.errors) as JobError[],
    duplicates: JSON.parse(r.duplicates) as JobDuplicate[],
    skipped: JSON.parse(r.skipped) as JobSkipped,
    createdAt: r.created_at,
    updatedAt: r.updated_at
  }
}
