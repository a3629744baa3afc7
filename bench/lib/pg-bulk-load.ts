/**
 * Loads a large vector set into a PostgreSQL backend's database the way an operator would: COPY
 * FROM STDIN (psql, since node-pg has no COPY support without pg-copy-streams), then CREATE INDEX
 * with maintenance_work_mem large enough for pgvector to build the graph in memory. The backend
 * must have opened the database once (schema, index record); the index it built on the empty table
 * is dropped first and rebuilt under the same name and settings, so the backend opens it as its own.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import path from 'node:path'
import pg from 'pg'
import { findBinDir } from '../../scripts/lib/postgres-server.js'
import { buildHnswIndex, hnswIndexName, readIndexRecord } from '../../src/backends/postgres/index-settings.js'

export interface BulkRow { id: string, sha256: string, metadata: Record<string, unknown>, embedding: Float32Array }
export interface BulkLoadResult { copyMs: number, keysMs: number, indexMs: number, maintenanceWorkMem: string }

/** rows per write to psql's stdin */
const CHUNK = 1000

async function copyRows (url: string, n: number, rowAt: (i: number) => BulkRow): Promise<void> {
  const bin = findBinDir()
  if (bin === undefined) throw new Error('no PostgreSQL binaries (psql) found for COPY')
  const psql = spawn(path.join(bin, 'psql'), [url, '-v', 'ON_ERROR_STOP=1', '-c', 'COPY images (id, sha256, width, height, metadata, embedding) FROM STDIN'], { stdio: ['pipe', 'ignore', 'pipe'] })
  let stderr = ''
  psql.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = once(psql, 'exit')
  for (let i = 0; i < n; i += CHUNK) {
    const lines: string[] = []
    for (let j = i; j < Math.min(n, i + CHUNK); j++) {
      const r = rowAt(j)
      // 9 significant digits give the float32 back exactly
      lines.push(`${r.id}\t${r.sha256}\t1\t1\t${JSON.stringify(r.metadata)}\t[${Array.from(r.embedding, (x) => x.toPrecision(9)).join(',')}]\n`)
    }
    if (!psql.stdin.write(lines.join(''))) await once(psql.stdin, 'drain')
  }
  psql.stdin.end()
  const [code] = await exited as [number | null]
  if (code !== 0) throw new Error(`psql COPY exited with ${code}: ${stderr.trim()}`)
}

export async function bulkLoadPostgres (url: string, n: number, rowAt: (i: number) => BulkRow, maintenanceWorkMem: string): Promise<BulkLoadResult> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    const record = await readIndexRecord(c)
    if (record === undefined) throw new Error('open the backend once before the bulk load: the database has no index record')
    const name = hnswIndexName('images', record.vectorType)
    await c.query(`DROP INDEX ${name}`)
    // the per-row trigger that keeps images_metadata_keys is replaced by one set-based insert after the COPY
    await c.query('ALTER TABLE images DISABLE TRIGGER images_metadata_keys')
    const t0 = performance.now()
    await copyRows(url, n, rowAt)
    const t1 = performance.now()
    await c.query('INSERT INTO images_metadata_keys (id, key, num, instant) SELECT i.id, k.key, k.num, k.instant FROM images i, align_search_metadata_keys(i.metadata) k')
    await c.query('ALTER TABLE images ENABLE TRIGGER images_metadata_keys')
    await c.query('VACUUM ANALYZE images')
    await c.query('VACUUM ANALYZE images_metadata_keys')
    const t2 = performance.now()
    await c.query(`SET maintenance_work_mem = '${maintenanceWorkMem}'`)
    await buildHnswIndex(c, 'images', name, record.dim, record, false)
    return { copyMs: t1 - t0, keysMs: t2 - t1, indexMs: performance.now() - t2, maintenanceWorkMem }
  } finally {
    await c.end()
  }
}
