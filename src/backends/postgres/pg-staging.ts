/**
 * Job uploads staged in PostgreSQL (bytea), so that any worker on any machine reads them: the
 * UploadStaging port of the PostgreSQL backend. A file is written as it arrives, in chunks of
 * STAGING_CHUNK_BYTES (one row and one short transaction each), so an upload never sits whole in
 * the API's memory and never holds a connection while the client sends. The bytes go in as a
 * binary parameter and come back through binary COPY (copy-out.ts): their own size on the wire.
 * A cap on the staged total (STAGING_MAX_BYTES) answers 507 instead of letting staged uploads fill
 * the database's disk; it counts every chunk written, those of uploads still arriving included.
 */
import type pg from 'pg'
import { StorageFullError } from '../../core/errors.js'
import type { UploadStaging } from '../ports.js'
import { copyOutRows } from './copy-out.js'
import { withClient, withTransaction } from './pg-pool.js'

/**
 * A staged file of a job that does not exist is kept until its job's newest chunk is this old
 * before a sweep removes it: the API stages the files before it creates the job row, and a sweep
 * must catch neither an upload still arriving nor one between its last chunk and its job row.
 */
const ORPHAN_AGE = '1 hour'
/** advisory lock key that makes concurrent uploads check the cap one at a time */
const STAGING_CAP_LOCK = '7423991052018744002'
/** bytes per staged row: large enough that a row's overhead is nothing, small enough to sit in memory per upload */
export const STAGING_CHUNK_BYTES = 1024 * 1024

export class PgStaging implements UploadStaging {
  /** @param maxBytes the most bytes staged at once (all jobs); undefined = no cap */
  constructor (private readonly pool: pg.Pool, private readonly maxBytes?: number) {}

  async put (jobId: string, files: Array<{ path: string, bytes: Buffer }>): Promise<void> {
    try {
      for (const f of files) await this.putStream(jobId, f.path, [f.bytes])
    } catch (err) {
      await this.remove(jobId).catch(() => {})
      throw err
    }
  }

  /**
   * Stages one file from `source` as it arrives, a chunk at a time; resolves with its size. On a
   * throw (the source failed, or StorageFullError) the chunks written stay: the caller removes the
   * job's files (`remove`), as it must for its other files anyway.
   */
  async putStream (jobId: string, path: string, source: Iterable<Buffer> | AsyncIterable<Buffer>): Promise<number> {
    let chunk = 0
    let size = 0
    let held: Buffer[] = []
    let heldBytes = 0
    const write = async (bytes: Buffer): Promise<void> => {
      await this.writeChunk(jobId, path, chunk++, bytes)
      size += bytes.length
    }
    for await (const piece of source) {
      held.push(piece)
      heldBytes += piece.length
      if (heldBytes < STAGING_CHUNK_BYTES) continue
      const all = Buffer.concat(held, heldBytes)
      let at = 0
      for (; all.length - at >= STAGING_CHUNK_BYTES; at += STAGING_CHUNK_BYTES) await write(all.subarray(at, at + STAGING_CHUNK_BYTES))
      held = at < all.length ? [all.subarray(at)] : []
      heldBytes = all.length - at
    }
    // the last chunk, or the only one of an empty file (so that it reads back as 0 bytes, not as missing)
    if (heldBytes > 0 || chunk === 0) await write(Buffer.concat(held, heldBytes))
    return size
  }

  private async writeChunk (jobId: string, path: string, chunk: number, bytes: Buffer): Promise<void> {
    const insert = 'INSERT INTO staged_uploads (job_id, path, chunk, bytes) VALUES ($1, $2, $3, $4)'
    if (this.maxBytes === undefined) {
      await this.pool.query(insert, [jobId, path, chunk, bytes])
      return
    }
    const maxBytes = this.maxBytes
    await withTransaction(this.pool, async (c) => {
      // held until commit: two uploads cannot both see room for one chunk
      await c.query('SELECT pg_advisory_xact_lock($1)', [STAGING_CAP_LOCK])
      const r = await c.query<{ staged: string }>('SELECT COALESCE(sum(size), 0)::text AS staged FROM staged_uploads')
      const staged = Number(r.rows[0]?.staged ?? 0)
      if (staged + bytes.length > maxBytes) {
        throw new StorageFullError(`the staging area is full: ${staged} bytes of uploads wait to be indexed, and this upload needs more than the ${maxBytes - staged} left under STAGING_MAX_BYTES (${maxBytes}). Retry once jobs have finished`)
      }
      await c.query(insert, [jobId, path, chunk, bytes])
    })
  }

  async read (jobId: string, paths: string[]): Promise<Array<Buffer | undefined>> {
    if (paths.length === 0) return []
    const rows = await withClient(this.pool, async (c) => await copyOutRows(c,
      `SELECT path, bytes FROM staged_uploads WHERE job_id = ${c.escapeLiteral(jobId)}
         AND path IN (${paths.map((p) => c.escapeLiteral(p)).join(', ')}) ORDER BY path, chunk`))
    const chunks = new Map<string, Buffer[]>()
    for (const [path, bytes] of rows) {
      const key = path!.toString('utf8')
      let list = chunks.get(key)
      if (list === undefined) chunks.set(key, list = [])
      list.push(bytes!)
    }
    // copied out of COPY's one buffer, so a file held later does not hold the whole batch
    return paths.map((p) => { const list = chunks.get(p); return list === undefined ? undefined : Buffer.concat(list) })
  }

  async remove (jobId: string): Promise<void> {
    await this.pool.query('DELETE FROM staged_uploads WHERE job_id = $1', [jobId])
  }

  async removeFinished (keepFailedMs = 0): Promise<number> {
    const r = await this.pool.query<{ job_id: string }>(
      `DELETE FROM staged_uploads s
       WHERE EXISTS (SELECT 1 FROM jobs j WHERE j.id = s.job_id AND (j.status IN ('done', 'cancelled')
               OR (j.status = 'failed' AND j.updated_at < clock_timestamp() - $1 * interval '1 millisecond')))
          OR (NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = s.job_id)
              AND NOT EXISTS (SELECT 1 FROM staged_uploads n WHERE n.job_id = s.job_id AND n.staged_at >= clock_timestamp() - interval '${ORPHAN_AGE}'))
       RETURNING s.job_id`, [keepFailedMs])
    return new Set(r.rows.map((row) => row.job_id)).size
  }
}
