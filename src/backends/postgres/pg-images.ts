/** The images collection of the PostgreSQL backend: rows, thumbnails (bytea) and the one atomic ingest write. */
import type { ImageRecord, Metadata } from '../../core/types.js'
import { resolveItemOutcomes } from '../job-outcomes.js'
import type { ImageCollection, JobProgress, NewImage, WriteOutcome } from '../ports.js'
import { insertRows, PgCollection, storedBySha, storedIds } from './pg-collection.js'
import { completeItems } from './pg-jobs.js'
import { RaceLost, withRetriedTransaction } from './pg-pool.js'
import { toVectorLiteral } from './pg-vector-search.js'
import { candidateIds, planWrites } from './plan-writes.js'

const COLUMNS = ['id', 'sha256', 'width', 'height', 'metadata', 'embedding', 'thumbnail', 'source']

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
   */
  async add (rows: NewImage[], progress?: JobProgress): Promise<WriteOutcome[]> {
    return await withRetriedTransaction(this.pool, async (c) => {
      const bySha = await storedBySha(c, 'images', rows.map((r) => r.sha256))
      const taken = await storedIds(c, 'images', candidateIds(rows))
      const plan = planWrites(rows, bySha, taken, 'image')
      const values = plan.inserts.map(({ row, id }) => {
        const r = rows[row]!
        return [id, r.sha256, r.width, r.height, JSON.stringify(r.metadata), toVectorLiteral(r.embedding), r.thumbnail, r.source ?? null]
      })
      if (await insertRows(c, 'images', COLUMNS, values) < values.length) throw new RaceLost()
      if (progress !== undefined) await completeItems(c, progress.jobId, resolveItemOutcomes(progress.outcomes, plan.outcomes))
      return plan.outcomes
    })
  }
}
