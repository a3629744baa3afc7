/**
 * The record of what built the stored vectors (table index_settings, migration 0004): model id,
 * dimension, vector type, M and ef_construction. The database's record wins: a process configured
 * otherwise follows it, logs each difference and shows it in /v1/info, and never drops or builds
 * over an index at start-up (an index build at 10M rows takes hours and blocks writes).
 *
 * Changing the index is explicit (`npm run db:reindex`, src/main/cli/db-reindex.ts), and built so
 * that a model switch can reuse the same steps:
 *   1. `next` row written: the target settings, so a crash leaves a trace the next run cleans up;
 *   2. the new index built CONCURRENTLY beside the old one (writes go on; an INVALID leftover of a
 *      crashed build is dropped first);
 *   3. the swap: in one transaction the `next` row becomes `active`; running processes re-read the
 *      record (RECORD_REFRESH_MS) and search through the new index's expression;
 *   4. after a grace time longer than that refresh, the old index is dropped CONCURRENTLY and the
 *      new one renamed to its plain name.
 */
import type pg from 'pg'
import type { Logger } from '../../core/types.js'
import type { PgVectorType } from './postgres-options.js'

export const VECTOR_TABLES = ['images', 'texts'] as const
export type VectorTable = typeof VECTOR_TABLES[number]

/** how often a running process re-reads the record, so it follows a db:reindex swap */
export const RECORD_REFRESH_MS = 30_000

type Queryable = Pick<pg.ClientBase, 'query'>

export interface IndexSettings { vectorType: PgVectorType, M: number, efConstruction: number }
export interface IndexRecord extends IndexSettings { modelId: string, dim: number }
export type RecordSlot = 'active' | 'next'

/** pgvector's bounds: m in 2..100, ef_construction at least 2·m */
export function pgvectorIndexParams (M: number, efConstruction: number): { M: number, efConstruction: number } {
  const m = Math.min(100, Math.max(2, M))
  return { M: m, efConstruction: Math.min(1000, Math.max(efConstruction, 2 * m)) }
}

export function hnswIndexName (table: VectorTable, vectorType: PgVectorType): string {
  return `${table}_embedding_${vectorType}_hnsw`
}

/** the name an index has while it is built beside the active one */
export function nextIndexName (table: VectorTable, vectorType: PgVectorType): string {
  return `${hnswIndexName(table, vectorType)}_next`
}

/** the indexed expression, which a search must repeat verbatim for the planner to use the index */
export function indexedExpression (vectorType: PgVectorType, dim: number): string {
  return vectorType === 'vector' ? 'embedding' : `(embedding::halfvec(${dim}))`
}

export async function readIndexRecord (db: Queryable, slot: RecordSlot = 'active'): Promise<IndexRecord | undefined> {
  const r = await db.query<{ model_id: string, dim: number, vector_type: PgVectorType, m: number, ef_construction: number }>(
    'SELECT model_id, dim, vector_type, m, ef_construction FROM index_settings WHERE slot = $1', [slot])
  const row = r.rows[0]
  return row === undefined ? undefined : { modelId: row.model_id, dim: row.dim, vectorType: row.vector_type, M: row.m, efConstruction: row.ef_construction }
}

export async function writeIndexRecord (db: Queryable, slot: RecordSlot, rec: IndexRecord): Promise<void> {
  await db.query(
    `INSERT INTO index_settings (slot, model_id, dim, vector_type, m, ef_construction) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (slot) DO UPDATE SET model_id = excluded.model_id, dim = excluded.dim, vector_type = excluded.vector_type,
       m = excluded.m, ef_construction = excluded.ef_construction, updated_at = clock_timestamp()`,
    [slot, rec.modelId, rec.dim, rec.vectorType, rec.M, rec.efConstruction])
}

/** Each setting of `configured` that differs from the database's record, named as the environment names it. */
export function settingsDifferences (record: IndexSettings, configured: IndexSettings): string[] {
  const out: string[] = []
  if (record.vectorType !== configured.vectorType) out.push(`PG_VECTOR_TYPE=${configured.vectorType}, the database's index: ${record.vectorType}`)
  if (record.M !== configured.M) out.push(`HNSW_M=${configured.M}, the database's index: ${record.M}`)
  if (record.efConstruction !== configured.efConstruction) out.push(`HNSW_EF_CONSTRUCTION=${configured.efConstruction}, the database's index: ${record.efConstruction}`)
  return out
}

/** M and ef_construction of index `name`, or undefined when there is no such (valid) index */
export async function storedIndexParams (db: Queryable, name: string): Promise<{ M: number, efConstruction: number } | undefined> {
  const { rows } = await db.query<{ reloptions: string[] | null }>(
    'SELECT c.reloptions FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid WHERE c.oid = to_regclass($1) AND i.indisvalid', [name])
  if (rows[0] === undefined) return undefined
  const options = new Map((rows[0].reloptions ?? []).map((o) => o.split('=') as [string, string]))
  return { M: Number(options.get('m') ?? 16), efConstruction: Number(options.get('ef_construction') ?? 64) }
}

/**
 * The record a database without one gets, from the indexes it has (a database of an older
 * version built them from its settings then), else from this process's settings.
 */
export async function inferIndexSettings (db: Queryable, configured: IndexSettings): Promise<IndexSettings> {
  const other: PgVectorType = configured.vectorType === 'vector' ? 'halfvec' : 'vector'
  for (const vectorType of [configured.vectorType, other]) {
    const params = await storedIndexParams(db, hnswIndexName('images', vectorType))
    if (params !== undefined) return { vectorType, ...params }
  }
  return configured
}

/** CREATE INDEX (CONCURRENTLY when asked: writes go on, but it cannot run in a transaction) */
export async function buildHnswIndex (db: Queryable, table: VectorTable, name: string, dim: number, s: IndexSettings, concurrently: boolean): Promise<void> {
  const ops = s.vectorType === 'vector' ? 'vector_cosine_ops' : 'halfvec_cosine_ops'
  await db.query(`CREATE INDEX ${concurrently ? 'CONCURRENTLY ' : ''}${name} ON ${table} USING hnsw (${indexedExpression(s.vectorType, dim)} ${ops}) ` +
    `WITH (m = ${s.M}, ef_construction = ${s.efConstruction})`)
}

/**
 * Builds what the active record describes where an index is missing (a new database; one whose
 * index an operator dropped). Never drops an index and never rebuilds an existing one.
 */
export async function ensureRecordedIndexes (db: Queryable, record: IndexRecord, logger: Logger | undefined): Promise<void> {
  for (const table of VECTOR_TABLES) {
    const name = hnswIndexName(table, record.vectorType)
    if (await storedIndexParams(db, name) !== undefined) continue
    logger?.info({ table, index: name, M: record.M, efConstruction: record.efConstruction }, 'building the HNSW index (once; large tables take a while)')
    await db.query(`DROP INDEX IF EXISTS ${name}`) // an INVALID leftover of a crashed build only
    await buildHnswIndex(db, table, name, record.dim, record, false)
  }
}

export interface ReindexOptions {
  /** wait between the swap and the drop of the old index, so running processes re-read the record first (ms) */
  graceMs: number
  logger?: Logger | undefined
  /** called while waiting out the grace time (tests use it) */
  sleep?: (ms: number) => Promise<void>
}

/**
 * Changes the index to `target` without blocking writes: build beside, swap the record, drop the
 * old index after `graceMs`. `db` must be a plain connection (not in a transaction) that holds the
 * caller's lock against another reindex; statements there need no statement timeout.
 * Returns false when the record already says `target` and its indexes exist.
 */
export async function reindex (db: Queryable, target: IndexSettings, opts: ReindexOptions): Promise<boolean> {
  const active = await readIndexRecord(db)
  if (active === undefined) throw new Error('the database has no index record yet: start the server (or a worker) once, then run db:reindex')
  const standby = await db.query("SELECT model_id FROM index_settings WHERE slot = 'standby'")
  // the standby model's column keeps the index it was built with; the swap renames both, so they must agree
  if ((standby.rowCount ?? 0) > 0) throw new Error('a standby model is kept beside the active one (a model switch): finish or delete it first (DELETE /v1/models/standby), then run db:reindex')
  const same = active.vectorType === target.vectorType && active.M === target.M && active.efConstruction === target.efConstruction
  if (same) return false
  const next: IndexRecord = { ...active, ...target }
  await writeIndexRecord(db, 'next', next)
  for (const table of VECTOR_TABLES) {
    const name = nextIndexName(table, target.vectorType)
    await db.query(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`) // a crashed earlier run's INVALID index
    opts.logger?.info({ table, index: name, ...target }, 'building the new HNSW index beside the old one (CONCURRENTLY: writes go on)')
    await buildHnswIndex(db, table, name, next.dim, next, true)
  }
  await db.query('BEGIN')
  try {
    await writeIndexRecord(db, 'active', next)
    await db.query("DELETE FROM index_settings WHERE slot = 'next'")
    await db.query('COMMIT')
  } catch (err) {
    await db.query('ROLLBACK').catch(() => {})
    throw err
  }
  opts.logger?.info({ graceMs: opts.graceMs }, 'swapped: the record names the new index; waiting for running processes to follow before the old one goes')
  await (opts.sleep ?? (async (ms) => { await new Promise((resolve) => setTimeout(resolve, ms)) }))(opts.graceMs)
  for (const table of VECTOR_TABLES) {
    const old = hnswIndexName(table, active.vectorType)
    await db.query(`DROP INDEX CONCURRENTLY IF EXISTS ${old}`)
    // only when the type changed does the old index have another name than the new plain one
    await db.query(`DROP INDEX CONCURRENTLY IF EXISTS ${hnswIndexName(table, target.vectorType)}`)
    await db.query(`ALTER INDEX ${nextIndexName(table, target.vectorType)} RENAME TO ${hnswIndexName(table, target.vectorType)}`)
    opts.logger?.info({ table, dropped: old }, 'old HNSW index dropped')
  }
  return true
}
