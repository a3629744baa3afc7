/**
 * k-nearest search over one vector table, with the metadata filter (./pg-filter.ts) and the excluded
 * ids in the same statement. A planner picks the path, and every path is bounded:
 * - a plain search (no filter, no excluded ids) walks pgvector's HNSW index on the session's
 *   defaults (pg-pool.ts sets ef_search at connect): one statement, one round trip. When the walk
 *   brings back fewer than k (dead rows after deletes) it walks once more with the iterative scan,
 *   which is bounded by hnsw.max_scan_tuples; it never scans the table;
 * - a filtered search first counts the filter's matches, up to EXACT_MAX_MATCHES + 1, with index
 *   scans only (the GIN index on metadata, the B-trees of <table>_metadata_keys): so the count reads
 *   at most that many index entries. Few matches: they are read and sorted exactly (the exact path,
 *   which reads no more rows than the indexed part of the filter matches). Many: the HNSW walk with
 *   `hnsw.iterative_scan = relaxed_order` (pgvector 0.8), going on past ef_search candidates until k
 *   rows pass the WHERE clause; the outer ORDER BY puts the relaxed order back in exact distance
 *   order, over the float32 column (a halfvec index only chooses the candidates). A walk that stops
 *   short of k (max_scan_tuples ran out, or pgvector 0.7) takes the exact path;
 * - excluded ids alone take the iterative walk, and never a second pass.
 * Every search but the plain one runs in its own transaction with SET LOCALs, among them
 * `statement_timeout` (SearchSettings.timeoutMs), so each statement of it is bounded in time and a
 * pooled connection goes back to the pool as it came.
 */
import pg from 'pg'
import pgvector from 'pgvector'
import { parseFilter, type FilterNode } from '../../core/metadata-filter.js'
import type { Metadata } from '../../core/types.js'
import type { VectorHit, VectorSearchOptions } from '../ports.js'
import { indexedExpression, type VectorTable } from './migrate.js'
import { binder, filterCondition } from './pg-filter.js'
import { inTransaction, withClient } from './pg-pool.js'
import type { PgVectorType } from './postgres-options.js'

export interface SearchSettings {
  table: VectorTable
  dim: number
  vectorType: PgVectorType
  efSearch: number
  /** pgvector ≥ 0.8; without it a filtered walk of the HNSW index that finds fewer than k takes the exact pass */
  iterativeScan: boolean
  /** the pool's sessions already have `sessionSettings(...)`: a search with these settings needs no transaction */
  sessionDefaults?: boolean
  /** statement_timeout of each statement of a filtered search, ms (default SEARCH_TIMEOUT_MS) */
  timeoutMs?: number
  /** a filter matching at most this many rows takes the exact path (default EXACT_MAX_MATCHES) */
  exactMaxMatches?: number
  /**
   * the model the queries are encoded with: when set, a statement run after another model became
   * active fails (align_search_active_model_is, migration 0009) rather than compare the two models' vectors
   */
  modelId?: string
}

/** a filter matching at most this many rows is scored exactly over its matches */
export const EXACT_MAX_MATCHES = 4000
/** default statement_timeout of a search's statements, ms */
export const SEARCH_TIMEOUT_MS = 10_000

interface HitRow { id: string, metadata: Metadata, text?: string, source?: string | null, embedding?: string, distance: number }

/** the most candidates pgvector's ef_search accepts */
const MAX_EF_SEARCH = 1000

export function toVectorLiteral (v: Float32Array): string {
  return pgvector.toSql(Array.from(v)) as string
}

export function fromVectorLiteral (text: string): Float32Array {
  return Float32Array.from(pgvector.fromSql(text) as number[])
}

/** the WHERE conditions of a search: the filter and the excluded ids */
function conditions (s: SearchSettings, filter: FilterNode | undefined, opts: VectorSearchOptions, values: unknown[], exact: boolean): string[] {
  const bind = binder(values)
  const where: string[] = []
  if (s.modelId !== undefined) where.push(`align_search_active_model_is(${bind(s.modelId)})`)
  if (filter !== undefined) where.push(filterCondition(s.table, filter, bind, exact))
  if (opts.excludeIds !== undefined && opts.excludeIds.length > 0) where.push(`NOT (id = ANY(${bind(opts.excludeIds)}::text[]))`)
  return where
}

/**
 * The statement and its parameters for one search (exported for the tests' EXPLAIN). `exact`: order
 * by an expression no index has, so the rows come from the filter's indexes and are sorted exactly.
 */
export function searchStatement (s: SearchSettings, query: Float32Array, opts: VectorSearchOptions, exact = false): { text: string, values: unknown[] } {
  const values: unknown[] = [toVectorLiteral(query)]
  const where = conditions(s, parseFilter(opts.filter), opts, values, exact)
  values.push(opts.k)
  const cols = ['id', 'metadata']
  cols.push(s.table === 'texts' ? 'text' : 'source')
  if (opts.withEmbeddings === true) cols.push('embedding::text AS embedding')
  const indexed = s.vectorType === 'vector'
    ? `${indexedExpression('vector', s.dim)} <=> $1::vector`
    : `${indexedExpression('halfvec', s.dim)} <=> $1::vector::halfvec(${s.dim})`
  // MATERIALIZED keeps the index scan (and its LIMIT) inside; "+ 0" stops PostgreSQL 17+ from
  // dropping the outer sort as already satisfied, which would keep the relaxed order
  const text = `WITH nearest AS MATERIALIZED (
    SELECT ${cols.join(', ')}, embedding <=> $1::vector AS distance
    FROM ${s.table}
    ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY ${exact ? '(embedding <=> $1::vector) + 0' : indexed}
    LIMIT $${values.length}
  )
  SELECT * FROM nearest ORDER BY distance + 0`
  return { text, values }
}

/** How many rows a filter matches, counted up to `limit` (exported for the tests' EXPLAIN). */
export function countStatement (s: SearchSettings, opts: VectorSearchOptions, limit: number): { text: string, values: unknown[] } {
  const values: unknown[] = []
  const where = conditions(s, parseFilter(opts.filter), opts, values, true)
  values.push(limit)
  return {
    text: `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${s.table} ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} LIMIT $${values.length}) m`,
    values
  }
}

/** ef_search at least k (as hnswlib does), plus the excluded ids, which the walk passes over */
function efFor (s: SearchSettings, opts: VectorSearchOptions): number {
  return Math.min(MAX_EF_SEARCH, Math.max(s.efSearch, opts.k + (opts.excludeIds?.length ?? 0)))
}

/** the SET LOCALs of a walk: ef_search at least k, the iterative scan, and the time bound */
export function searchSettings (s: SearchSettings, opts: VectorSearchOptions): string {
  const sets = [`SET LOCAL hnsw.ef_search = ${efFor(s, opts)}`, `SET LOCAL statement_timeout = ${timeoutOf(s)}`]
  if (s.iterativeScan) sets.push('SET LOCAL hnsw.iterative_scan = relaxed_order')
  return sets.join('; ')
}

/**
 * The SET LOCALs of the count and the exact path: the rows come from the filter's indexes, not from
 * a scan of the table. No sequential scan, and no hash or merge join, which would read every row of
 * the table to meet the side table's matches; a nested loop looks each match up by id instead.
 * These are cost penalties, not bans: a filter of negations alone has no index to use; and a penalty
 * inflates the plan's cost past jit_above_cost, so JIT is off (it spent 400 ms compiling a 300-row
 * scan). And the time bound.
 */
export function exactSettings (s: SearchSettings): string {
  return `SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL jit = off; SET LOCAL statement_timeout = ${timeoutOf(s)}`
}

function timeoutOf (s: SearchSettings): number {
  return Math.max(1, Math.round(s.timeoutMs ?? SEARCH_TIMEOUT_MS))
}

/** The plain search's setting as a session default, for the pool's connections. */
export function sessionSettings (efSearch: number): string {
  return `SET hnsw.ef_search = ${Math.min(MAX_EF_SEARCH, efSearch)}`
}

/** How searches were answered (for tests, metrics and the bench). */
export interface SearchCounters {
  /** filtered searches scored exactly over the filter's matches */
  exact: number
  /** searches that walked the HNSW index with the iterative scan */
  walk: number
  /** walks that stopped short of k and took the exact path */
  walkThenExact: number
  /** plain searches that came back short (dead rows) and walked again with the iterative scan */
  plainRetries: number
}

export function newSearchCounters (): SearchCounters {
  return { exact: 0, walk: 0, walkThenExact: 0, plainRetries: 0 }
}

export async function searchNearest (pool: pg.Pool, s: SearchSettings, query: Float32Array, opts: VectorSearchOptions, counters: SearchCounters = newSearchCounters()): Promise<VectorHit[]> {
  if (opts.k <= 0) return []
  const filter = parseFilter(opts.filter)
  const excluding = opts.excludeIds !== undefined && opts.excludeIds.length > 0
  const walk = searchStatement(s, query, opts)
  const iterativeWalk = async (): Promise<HitRow[]> => await withClient(pool, async (client) =>
    await inTransaction(client, async (c) => (await c.query<HitRow>(walk)).rows, `BEGIN; ${searchSettings(s, opts)}`))
  let rows: HitRow[]
  if (filter === undefined) {
    if (!excluding && s.sessionDefaults === true && efFor(s, opts) === Math.min(MAX_EF_SEARCH, s.efSearch)) {
      rows = (await pool.query<HitRow>(walk)).rows
      // short of k: fewer rows exist, or dead rows (deletes) used up ef_search candidates
      if (rows.length < opts.k) {
        counters.plainRetries++
        rows = await iterativeWalk()
      }
    } else {
      counters.walk++
      rows = await iterativeWalk()
    }
  } else {
    rows = await withClient(pool, async (client) => await inTransaction(client, async (c) => {
      const cutoff = s.exactMaxMatches ?? EXACT_MAX_MATCHES
      const matches = (await c.query<{ n: number }>(countStatement(s, opts, cutoff + 1))).rows[0]?.n ?? 0
      if (matches === 0) return []
      const exact = async (): Promise<HitRow[]> => (await c.query<HitRow>(searchStatement(s, query, opts, true))).rows
      if (matches <= cutoff) {
        counters.exact++
        return await exact()
      }
      counters.walk++
      await c.query(`RESET enable_seqscan; RESET enable_hashjoin; RESET enable_mergejoin; RESET jit; ${searchSettings(s, opts)}`)
      const walked = (await c.query<HitRow>(walk)).rows
      if (walked.length >= opts.k) return walked
      counters.walkThenExact++
      await c.query(exactSettings(s))
      return await exact()
    }, `BEGIN; ${exactSettings(s)}`))
  }
  const hits: VectorHit[] = []
  for (const row of rows) {
    // a row left out of this model by a switch holds a zero vector: no direction, no distance (NaN)
    if (Number.isNaN(row.distance)) continue
    const score = Math.min(1, Math.max(-1, 1 - row.distance)) // cosines clamped, as the hnswlib index does
    if (opts.minScore !== undefined && score < opts.minScore) break
    const hit: VectorHit = { id: row.id, score, metadata: row.metadata }
    if (row.text !== undefined) hit.text = row.text
    if (row.source !== undefined) hit.source = row.source
    if (row.embedding !== undefined) hit.embedding = fromVectorLiteral(row.embedding)
    hits.push(hit)
  }
  return hits
}
