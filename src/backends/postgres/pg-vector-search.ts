/**
 * k-nearest search through pgvector's HNSW index, with the metadata filter (`metadata @> $2`) and
 * the excluded ids applied during the walk.
 *
 * A filtered search has to return k rows whenever k rows match. Three pieces make sure of it:
 * - `hnsw.iterative_scan = relaxed_order` (pgvector 0.8) lets the index scan go on past
 *   ef_search candidates until k rows pass the WHERE clause (or hnsw.max_scan_tuples is reached);
 *   the outer ORDER BY then puts the relaxed order back in exact distance order, over the float32
 *   column, so a halfvec index only chooses the candidates;
 * - the planner is steered to that index scan for filtered searches: it cannot estimate how many
 *   rows a jsonb @> matches (it guesses "almost none") and would otherwise read every matching row
 *   through the GIN index and sort them all, exact but as slow as a full scan for a broad filter;
 * - when the index scan still brings back fewer than k (a filter so rare that max_scan_tuples runs
 *   out, or pgvector 0.7 without iterative scans), the same statement runs again without the HNSW
 *   index: the GIN index finds the few matching rows and they are sorted exactly.
 * Settings are SET LOCAL inside the search's own transaction, so a pooled connection goes back to
 * the pool as it came.
 */
import pg from 'pg'
import pgvector from 'pgvector'
import type { Metadata } from '../../types.js'
import type { VectorHit, VectorSearchOptions } from '../ports.js'
import { indexedExpression, type VectorTable } from './migrate.js'
import { inTransaction, withClient } from './pg-pool.js'
import type { PgVectorType } from './postgres-options.js'

export interface SearchSettings {
  table: VectorTable
  dim: number
  vectorType: PgVectorType
  efSearch: number
  /** pgvector ≥ 0.8; without it a filtered search that finds fewer than k through the index takes the exact pass */
  iterativeScan: boolean
}

interface HitRow { id: string, metadata: Metadata, text?: string, embedding?: string, distance: number }

/** the most candidates pgvector's ef_search accepts */
const MAX_EF_SEARCH = 1000

export function toVectorLiteral (v: Float32Array): string {
  return pgvector.toSql(Array.from(v)) as string
}

export function fromVectorLiteral (text: string): Float32Array {
  return Float32Array.from(pgvector.fromSql(text) as number[])
}

/** The statement and its parameters for one search (exported for the tests' EXPLAIN). */
export function searchStatement (s: SearchSettings, query: Float32Array, opts: VectorSearchOptions): { text: string, values: unknown[] } {
  const values: unknown[] = [toVectorLiteral(query)]
  const where: string[] = []
  if (opts.filter !== undefined && Object.keys(opts.filter).length > 0) {
    values.push(JSON.stringify(opts.filter))
    where.push(`metadata @> $${values.length}::jsonb`)
  }
  if (opts.excludeIds !== undefined && opts.excludeIds.length > 0) {
    values.push(opts.excludeIds)
    where.push(`NOT (id = ANY($${values.length}::text[]))`)
  }
  values.push(opts.k)
  const cols = ['id', 'metadata']
  if (s.table === 'texts') cols.push('text')
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
    ORDER BY ${indexed}
    LIMIT $${values.length}
  )
  SELECT * FROM nearest ORDER BY distance + 0`
  return { text, values }
}

/** the SET LOCALs of the index scan: ef_search at least k (as hnswlib does), the iterative scan, the plan */
export function searchSettings (s: SearchSettings, opts: VectorSearchOptions): string {
  const ef = Math.min(MAX_EF_SEARCH, Math.max(s.efSearch, opts.k))
  const sets = [`SET LOCAL hnsw.ef_search = ${ef}`]
  if (s.iterativeScan) sets.push('SET LOCAL hnsw.iterative_scan = relaxed_order')
  if (isFiltered(opts)) sets.push('SET LOCAL enable_bitmapscan = off', 'SET LOCAL enable_seqscan = off')
  return sets.join('; ')
}

/** the SET LOCALs of the exact pass: anything but the HNSW index */
const EXACT_SETTINGS = 'SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = on; SET LOCAL enable_seqscan = on'

function isFiltered (opts: VectorSearchOptions): boolean {
  return (opts.filter !== undefined && Object.keys(opts.filter).length > 0) || (opts.excludeIds?.length ?? 0) > 0
}

/** Counts the searches that needed the exact pass (for tests and metrics: it should stay rare). */
export interface SearchCounters { exactPasses: number }

export async function searchNearest (pool: pg.Pool, s: SearchSettings, query: Float32Array, opts: VectorSearchOptions, counters?: SearchCounters): Promise<VectorHit[]> {
  if (opts.k <= 0) return []
  const statement = searchStatement(s, query, opts)
  // BEGIN and the SET LOCALs travel as one round trip
  const rows = await withClient(pool, async (client) => await inTransaction(client, async (c) => {
    const viaIndex = (await c.query<HitRow>(statement)).rows
    if (viaIndex.length >= opts.k || !isFiltered(opts)) return viaIndex
    if (counters !== undefined) counters.exactPasses++
    await c.query(EXACT_SETTINGS)
    return (await c.query<HitRow>(statement)).rows
  }, `BEGIN; ${searchSettings(s, opts)}`))
  const hits: VectorHit[] = []
  for (const row of rows) {
    const score = Math.min(1, Math.max(-1, 1 - row.distance)) // cosines clamped, as the hnswlib index does
    if (opts.minScore !== undefined && score < opts.minScore) break
    const hit: VectorHit = { id: row.id, score, metadata: row.metadata }
    if (row.text !== undefined) hit.text = row.text
    if (row.embedding !== undefined) hit.embedding = fromVectorLiteral(row.embedding)
    hits.push(hit)
  }
  return hits
}
