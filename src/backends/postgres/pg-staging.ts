/**
 * Job uploads staged in PostgreSQL (bytea), so that any worker on any machine reads them: the
 * UploadStaging port of the PostgreSQL backend.
 */
import type pg from 'pg'
import type { UploadStaging } from '../ports.js'
import { withTransaction } from './pg-pool.js'

/**
 * Files of a job that does not exist are kept this long before a sweep removes them: the API
 * stages the files before it creates the job row, and a sweep must not catch one in between.
 */
const ORPHAN_AGE = '1 hour'

export class PgStaging implements UploadStaging {
  constructor (private readonly pool: pg.Pool) {}

  async put (jobId: string, files: Array<{ path: string, bytes: Buffer }>): Promise<void> {
    await withTransaction(this.pool, async (c) => {
      // one file per statement: a Buffer parameter travels as it is, while inside an array it would be hex text (twice the bytes)
      for (const f of files) await c.query('INSERT INTO staged_uploads (job_id, path, bytes) VALUES ($1, $2, $3)', [jobId, f.path, f.bytes])
    })
  }

  async read (jobId: string, paths: string[]): Promise<Array<Buffer | undefined>> {
    if (paths.length === 0) return []
    const r = await this.pool.query<{ path: string, bytes: Buffer }>(
      'SELECT path, bytes FROM staged_uploads WHERE job_id = $1 AND path = ANY($2::text[])', [jobId, paths])
    const byPath = new Map(r.rows.map((row) => [row.path, row.bytes]))
    return paths.map((p) => byPath.get(p))
  }

  async remove (jobId: string): Promise<void> {
    await this.pool.query('DELETE FROM staged_uploads WHERE job_id = $1', [jobId])
  }

  async removeFinished (): Promise<number> {
    const r = await this.pool.query<{ job_id: string }>(
      `DELETE FROM staged_uploads s
       WHERE EXISTS (SELECT 1 FROM jobs j WHERE j.id = s.job_id AND j.status IN ('done', 'failed', 'cancelled'))
          OR (NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = s.job_id) AND s.staged_at < clock_timestamp() - interval '${ORPHAN_AGE}')
       RETURNING s.job_id`)
    return new Set(r.rows.map((row) => row.job_id)).size
  }
}
