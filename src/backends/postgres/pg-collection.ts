/**
 * One vector table of the PostgreSQL backend. The table is the index: a committed row is
 * searchable by every process, and a committed DELETE is gone for all of them.
 */
import type pg from 'pg'
import type { MetadataFilter } from '../../core/types.js'
import type { ListedRow, VectorCollection, VectorHit, VectorSearchOptions } from '../ports.js'
import { MetadataSample } from './metadata-sample.js'
import { fromVectorLiteral, newSearchCounters, searchNearest, type SearchCounters, type SearchSettings } from './pg-vector-search.js'

/** from this many rows (as the planner estimates them) on, /v1/info shows the estimate */
export const ESTIMATE_FROM = 100_000
/** default of PgCollection.estimateEveryMs */
const ROWS_ESTIMATE_MS = 60_000

export class PgCollection implements VectorCollection {
  /** how searches were answered: exact, walked, walked then exact */
  readonly counters: SearchCounters = newSearchCounters()
  /** which filters surely match too many rows for the exact path, so their searches skip the count */
  private readonly sample: MetadataSample

  constructor (protected readonly pool: pg.Pool, readonly settings: SearchSettings) {
    this.sample = new MetadataSample(settings.table)
  }

  protected get table (): string { return this.settings.table }

  async count (): Promise<number> {
    const r = await this.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${this.table}`)
    return r.rows[0]?.n ?? 0
  }

  /**
   * count(*) reads the whole table (seconds at 10M rows, on every /v1/info): from ESTIMATE_FROM
   * rows on, the planner's estimate (pg_class.reltuples, kept by ANALYZE and autovacuum) instead.
   */
  async displayCount (): Promise<{ n: number, exact: boolean }> {
    const r = await this.pool.query<{ n: number }>('SELECT reltuples::float8 AS n FROM pg_class WHERE oid = $1::regclass', [this.table])
    const estimate = r.rows[0]?.n ?? -1 // -1: never analyzed yet
    if (estimate >= ESTIMATE_FROM) return { n: Math.round(estimate), exact: false }
    return { n: await this.count(), exact: true }
  }

  async idsBySha (sha256s: string[]): Promise<Map<string, string>> {
    return await storedBySha(this.pool, this.table, sha256s)
  }

  async existingIds (ids: string[]): Promise<Set<string>> {
    return await storedIds(this.pool, this.table, ids)
  }

  async embedding (id: string): Promise<Float32Array | undefined> {
    const r = await this.pool.query<{ e: string }>(`SELECT embedding::text AS e FROM ${this.table} WHERE id = $1`, [id])
    const e = r.rows[0]?.e
    return e === undefined ? undefined : fromVectorLiteral(e)
  }

  /** how often a filtered search re-reads the table's estimated size and its metadata sample, ms */
  estimateEveryMs = ROWS_ESTIMATE_MS

  async search (query: Float32Array, opts: VectorSearchOptions): Promise<VectorHit[]> {
    if (opts.filter !== undefined) await this.freshEstimate()
    return await searchNearest(this.pool, this.settings, query, opts, this.counters,
      (filter, cutoff) => this.sample.surelyMoreThan(filter, cutoff) ? 'walk' : 'count')
  }

  /** when the table's size was last read for the planner's exact-path cutoff (performance.now(), ms) */
  private estimatedAt = -Infinity

  /**
   * The first filtered search waits for the table's size and sample. Later refreshes run beside the
   * searches, which use the previous ones meanwhile: a refresh reads about 4,000 rows' pages, and the
   * one search a minute that came first should not pay for it. A refresh that fails leaves the
   * previous estimate to serve until the next one.
   */
  private async freshEstimate (): Promise<void> {
    if (performance.now() - this.estimatedAt <= this.estimateEveryMs) return
    const first = this.estimatedAt === -Infinity
    const refresh = this.estimateRows()
    if (first) await refresh
    else refresh.catch(() => {})
  }

  /** the planner's estimate of the table's rows (pg_class.reltuples, kept by ANALYZE and autovacuum; -1 before the first) */
  private async estimateRows (): Promise<void> {
    this.estimatedAt = performance.now()
    const r = await this.pool.query<{ n: number }>('SELECT reltuples::float8 AS n FROM pg_class WHERE oid = $1::regclass', [this.table])
    const n = r.rows[0]?.n ?? -1
    if (n > 0) this.settings.rowsEstimate = n
    else delete this.settings.rowsEstimate
    await this.sample.refresh(this.pool, Math.max(0, n))
  }

  async list (opts: { limit: number, after?: string, filter?: MetadataFilter }): Promise<ListedRow[]> {
    const extra = this.table === 'texts' ? 'text' : 'source'
    // metadata @> filter is the same exact match searches use (GIN-indexed)
    const r = await this.pool.query<{ id: string, metadata: Record<string, unknown>, created_at: Date, text?: string, source?: string | null }>(
      `SELECT id, metadata, created_at, ${extra} FROM ${this.table} WHERE id > $1 AND metadata @> $2::jsonb ORDER BY id LIMIT $3`,
      [opts.after ?? '', JSON.stringify(opts.filter ?? {}), opts.limit])
    return r.rows.map((row) => {
      const out: ListedRow = { id: row.id, metadata: row.metadata, createdAt: row.created_at.toISOString() }
      if (row.text !== undefined) out.text = row.text
      if (row.source !== undefined) out.source = row.source
      return out
    })
  }

  async remove (id: string): Promise<boolean> {
    // autocommit: resolved means committed, and every later statement anywhere sees it gone
    const r = await this.pool.query(`DELETE FROM ${this.table} WHERE id = $1`, [id])
    return (r.rowCount ?? 0) > 0
  }
}

type Queryable = Pick<pg.ClientBase, 'query'>

export async function storedBySha (db: Queryable, table: string, sha256s: string[]): Promise<Map<string, string>> {
  if (sha256s.length === 0) return new Map()
  const r = await db.query<{ sha256: string, id: string }>(`SELECT sha256, id FROM ${table} WHERE sha256 = ANY($1::text[])`, [sha256s])
  return new Map(r.rows.map((row) => [row.sha256, row.id]))
}

export async function storedIds (db: Queryable, table: string, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set()
  const r = await db.query<{ id: string }>(`SELECT id FROM ${table} WHERE id = ANY($1::text[])`, [ids])
  return new Set(r.rows.map((row) => row.id))
}

/** most bind parameters in one statement (the protocol's limit is 65535) */
const MAX_PARAMS = 30_000

/**
 * INSERT … ON CONFLICT DO NOTHING of many rows, in statements of at most MAX_PARAMS values.
 * Returns how many rows went in: fewer than given means a concurrent writer took a key first.
 */
export async function insertRows (db: Queryable, table: string, columns: string[], rows: unknown[][]): Promise<number> {
  const perStatement = Math.max(1, Math.floor(MAX_PARAMS / columns.length))
  let inserted = 0
  for (let start = 0; start < rows.length; start += perStatement) {
    const chunk = rows.slice(start, start + perStatement)
    const values: unknown[] = []
    const tuples = chunk.map((row) => `(${row.map((v) => { values.push(v); return `$${values.length}` }).join(', ')})`)
    const r = await db.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT DO NOTHING`, values)
    inserted += r.rowCount ?? 0
  }
  return inserted
}
