/** The images collection of the PostgreSQL backend: rows, thumbnails (bytea) and the one atomic ingest write. */
import type pg from 'pg'
import type { ImageRecord, Metadata } from '../../core/types.js'
import { resolveItemOutcomes } from '../job-outcomes.js'
import type { ImageCollection, JobProgress, NewImage, WriteOutcome } from '../ports.js'
import { insertRows, PgCollection, storedBySha, storedIds } from './pg-collection.js'
import { completeItems } from './pg-jobs.js'
import { vectorsByModel } from '../model-vectors.js'
import { readModelState, STANDBY_COLUMN } from './model-records.js'
import { RaceLost, withRetriedTransaction } from './pg-pool.js'
import { toVectorLiteral } from './pg-vector-search.js'
import { candidateIds, planWrites } from './plan-writes.js'

const COLUMNS = ['id', 'sha256', 'width', 'height', 'metadata', 'embedding', 'thumbnail', 'source', 'preview', 'preview_width', 'preview_height', 'original']

/** the outcome of a row whose job items another run of the batch recorded first (nothing written) */
const ALREADY_RECORDED: WriteOutcome = { status: 'failed', code: 'CONFLICT', error: 'already recorded by another run of this batch' }

/**
 * Locks the job items of `progress` that are still pending and returns the rows they refer to
 * (a row of no job item is kept too). Locking waits for a concurrent run of the same batch to
 * commit, and then sees its items recorded.
 */
async function rowsOfPendingItems (c: pg.PoolClient, progress: JobProgress, rowCount: number): Promise<Set<number>> {
  const seqs = progress.outcomes.map((o) => o.seq)
  const r = await c.query<{ seq: number }>(
    "SELECT seq FROM job_items WHERE job_id = $1 AND seq = ANY($2::int[]) AND status = 'pending' ORDER BY seq FOR UPDATE", [progress.jobId, seqs])
  const pending = new Set(r.rows.map((row) => row.seq))
  const referenced = new Set<number>()
  const live = new Set<number>()
  for (const o of progress.outcomes) {
    if (!('row' in o)) continue
    referenced.add(o.row)
    if (pending.has(o.seq)) live.add(o.row)
  }
  for (let i = 0; i < rowCount; i++) if (!referenced.has(i)) live.add(i)
  return live
}

export class PgImages extends PgCollection implements ImageCollection {
  async get (id: string): Promise<ImageRecord | undefined> {
    const r = await this.pool.query<{ id: string, sha256: string, width: number, height: number, metadata: Metadata, source: string | null, created_at: Date }>(
      'SELECT id, sha256, width, height, metadata, source, created_at FROM images WHERE id = $1', [id])
    const row = r.rows[0]
    return row === undefined
      ? undefined
      : { id: row.id, sha256: row.sha256, width: row.width, height: row.height, metadata: row.metadata, source: row.source, createdAt: row.created_at.toISOString() }
  }

  async thumbnail (id: string): Promise<Buffer | undefined> {
    const r = await this.pool.query<{ thumbnail: Buffer | null }>('SELECT thumbnail FROM images WHERE id = $1', [id])
    return r.rows[0]?.thumbnail ?? undefined
  }

  /**
   * One transaction: read which hashes and ids are stored, insert the new rows, record the job's
   * items. When another process commits one of the same hashes or ids between our read and our
   * insert, the insert skips that row; the transaction then rolls back and runs again, and the
   * second read sees the other process's row (so the outcome is `duplicate`, as if it came first).
   *
   * With a job's `progress`, only rows of items still pending are written: their item rows are
   * locked first, so of two runs of one batch (its first worker was thought dead) the later commit
   * finds the items recorded and inserts nothing, and cannot bring back an image deleted since.
   */
  async add (rows: NewImage[], progress?: JobProgress): Promise<WriteOutcome[]> {
    return await withRetriedTransaction(this.pool, async (c) => {
      const models = await readModelState(c, 'share')
      const live = progress === undefined ? undefined : await rowsOfPendingItems(c, progress, rows.length)
      const kept = live === undefined ? rows.map((_, i) => i) : rows.map((_, i) => i).filter((i) => live.has(i))
      const keptRows = kept.map((i) => rows[i]!)
      const bySha = await storedBySha(c, 'images', keptRows.map((r) => r.sha256))
      const taken = await storedIds(c, 'images', candidateIds(keptRows))
      const plan = planWrites(keptRows, bySha, taken, 'image')
      const values = plan.inserts.map(({ row, id }) => {
        const r = keptRows[row]!
        const v = vectorsByModel(r, models.active.modelId, models.standby?.modelId)
        const out: unknown[] = [id, r.sha256, r.width, r.height, JSON.stringify(r.metadata), toVectorLiteral(v.active), r.thumbnail, r.source ?? null,
          r.preview?.bytes ?? null, r.preview?.width ?? null, r.preview?.height ?? null, r.original ?? null]
        if (models.standby !== undefined) out.push(v.standby === undefined ? null : toVectorLiteral(v.standby))
        return out
      })
      const columns = models.standby === undefined ? COLUMNS : [...COLUMNS, STANDBY_COLUMN]
      if (await insertRows(c, 'images', columns, values) < values.length) throw new RaceLost()
      const outcomes: WriteOutcome[] = rows.map(() => ALREADY_RECORDED)
      kept.forEach((row, i) => { outcomes[row] = plan.outcomes[i]! })
      if (progress !== undefined) await completeItems(c, progress.jobId, resolveItemOutcomes(progress.outcomes, outcomes))
      return outcomes
    })
  }
}
