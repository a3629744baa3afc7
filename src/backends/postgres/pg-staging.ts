/**
 * Job uploads staged in PostgreSQL (bytea), so that any worker on any machine reads them: the
 * UploadStaging port of the PostgreSQL backend. The bytes go in as a binary parameter and come
 * back as base64 (4/3 of their size, not hex's twice). A cap on the staged total
 * (STAGING_MAX_BYTES) answers 507 instead of letting staged uploads fill the database's disk.
 */
import type pg from 'pg'
import { StorageFullError } from '../../core/errors.js'
import type { UploadStaging } from '../ports.js'
import { withTransaction } from './pg-pool.js'

/**
 * Files of a job that does not exist are kept this long before a sweep removes them: the API
 * stages the files before it creates the job row, and a sweep must not catch one in between.
 */
const ORPHAN_AGE = '1 hour'
/** advisory lock key that makes concurrent uploads check the cap one at a time */
const STAGING_CAP_LOCK = '7423991052018744002'

export class PgStaging implements UploadStaging {
  /** @param maxBytes the most bytes staged at once (all jobs); undefined = no cap */
  constructor (private readonly pool: pg.Pool, private readonly maxBytes?: number) {}

  async put (jobId: string, files: Array<{ path: string, bytes: Buffer }>): Promise<void> {
    await withTransaction(this.pool, async (c) => {
      if (this.maxBytes !== undefined) {
        const adding = files.reduce((n, f) => n + f.bytes.length, 0)
        // held until commit: two uploads cannot both see room for one
        await c.query('SELECT pg_advisory_xact_lock($1)', [STAGING_CAP_LOCK])
        const r = await c.query<{ staged: string }>('SELECT COALESCE(sum(size), 0)::text AS staged FROM staged_uploads')
        const staged = Number(r.rows[0]?.staged ?? 0)
        if (staged + adding > this.maxBytes) {
          throw new StorageFullError(`the staging area is full: ${staged} bytes of uploads wait to be indexed, and ${adding} more would pass STAGING_MAX_BYTES (${this.maxBytes}). Retry once jobs have finished`)
        }
      }
      // one file per statement: a Buffer parameter travels as it is, while inside an array it would be hex text (twice the bytes)
      for (const f of files) await c.query('INSERT INTO staged_uploads (job_id, path, bytes) VALUES ($1, $2, $3)', [jobId, f.path, f.bytes])
    })
  }

  async read (jobId: string, paths: string[]): Promise<Array<Buffer | undefined>> {
    if (paths.length === 0) return []
    // base64 text: 4/3 of the bytes on the wire, where bytea's default text form (hex) is twice them.
    // Not binary results: node-pg's protocol reader decodes every field as UTF-8 text first, which
    // mangles a binary bytea (any byte ≥ 0x80)
    const r = await this.pool.query<{ path: string, b64: string }>(
      "SELECT path, encode(bytes, 'base64') AS b64 FROM staged_uploads WHERE job_id = $1 AND path = ANY($2::text[])", [jobId, paths])
    const byPath = new Map(r.rows.map((row) => [row.path, Buffer.from(row.b64, 'base64')]))
    return paths.map((p) => byPath.get(p))
  }

  async remove (jobId: string): Promise<void> {
    await this.pool.query('DELETE FROM staged_uploads WHERE job_id = $1', [jobId])
  }

  async removeFinished (keepFailedMs = 0): Promise<number> {
    const r = await this.pool.query<{ job_id: string }>(
      `DELETE FROM staged_uploads s
       WHERE EXISTS (SELECT 1 FROM jobs j WHERE j.id = s.job_id AND (j.status IN ('done', 'cancelled')
               OR (j.status = 'failed' AND j.updated_at < clock_timestamp() - $1 * interval '1 millisecond')))
          OR (NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = s.job_id) AND s.staged_at < clock_timestamp() - interval '${ORPHAN_AGE}')
       RETURNING s.job_id`, [keepFailedMs])
    return new Set(r.rows.map((row) => row.job_id)).size
  }
}
