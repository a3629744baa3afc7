/**
 * k-nearest search over one vector table, with the metadata filter (./pg-filter.ts) and the excluded
 * ids in the same statement. A planner picks the path, and every path is bounded:
 * - a plain search (no filter, no excluded ids) walks pgvector's HNSW index on the session's
 *   defaults (pg-pool.ts sets ef_search at connect): one statement, one round trip. When the walk
 *   brings back fewer than k (dead rows after deletes) it walks once more with the iterative scan,
 *   which is bounded by hnsw.max_scan_tuples; it never scans the table;
 * - a filtered search whose filter surely matches more rows than the exact path takes (the table's
 *   metadata sample says so, ./metadata-sample.ts) walks straight away, as below, with no count;
 * - any other filtered search first counts the filter's matches, up to the cutoff + 1, with index
 *   scans only (the GIN index on metadata, the B-trees of <table>_metadata_keys, whose unique
 *   (key, id) index lets the count stream and stop): so the count reads at most that many index
 *   entries. Few matches: they are read and sorted exactly, in the same statement (plannedStatement;
 *   the exact path reads no more rows than the indexed part of the filter matches). Many: the HNSW
 *   walk with `hnsw.iterative_scan = relaxed_order` (pgvector 0.8), going on past ef_search
 *   candidates until k rows pass the WHERE clause, which is checked per candidate outside the
 *   ordered scan; the outer ORDER BY puts the relaxed order back in exact distance order, over the
 *   float32 column (a halfvec index only chooses the candidates). A walk that stops short of k
 *   (max_scan_tuples ran out, or pgvector 0.7) takes the exact path;
 * - excluded ids alone take the iterative walk, and never a second pass.
 * Every search but the plain one is one message per step (`SET LOCAL …; SELECT …`, values as
 * quoted literals): one round trip, run as one implicit transaction that the SET LOCALs last for,
 * among them `statement_timeout` (SearchSettings.timeoutMs), so each statement is bounded in time and
 * a pooled connection goes back to the pool as it came. BEGIN and COMMIT as round trips of their own
 * cost more than a selective filter's whole search (1.5 ms each on a loaded 2-core machine).
 */
import pg from 'pg'
import pgvector from 'pgvector'
import { parseFilter, type FilterNode } from '../../core/metadata-filter.js'
import type { Metadata } from '../../core/types.js'
import type { VectorHit, VectorSearchOptions } from '../ports.js'
import { indexedExpression, type VectorTable } from './migrate.js'
import { binder, filterCondition, literalBinder, type Bind } from './pg-filter.js'
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
  /** a filter matching at most this many rows takes the exact path (default: exactCutoff of rowsEstimate) */
  exactMaxMatches?: number
  /** about how many rows the table has (pg_class.reltuples), kept fresh by the collection */
  rowsEstimate?: number
  /**
   * the model the queries are encoded with: when set, a statement run after another model became
   * active fails (align_search_active_model_is, migration 0009) rather than compare the two models' vectors
   */
  modelId?: string
}

/** a filter matching at most this many rows is scored exactly over its matches, until the table's size is known (then exactCutoff) */
export const EXACT_MAX_MATCHES = 1000
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
function conditions (s: SearchSettings, filter: FilterNode | undefined, opts: VectorSearchOptions, bind: Bind, exact: boolean): string[] {
  const where: string[] = []
  if (s.modelId !== undefined) where.push(`align_search_active_model_is(${bind(s.modelId)})`)
  if (filter !== undefined) where.push(filterCondition(s.table, filter, bind, exact))
  if (opts.excludeIds !== undefined && opts.excludeIds.length > 0) where.push(`NOT (id = ANY(${bind(opts.excludeIds)}::text[]))`)
  return where
}

function whereOf (where: string[]): string {
  return where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''
}

/** the nearest-k CTE: `q` is the query vector's SQL, `where` its conditions, `k` the limit's SQL */
function nearestSql (s: SearchSettings, opts: VectorSearchOptions, q: string, where: string[], k: string, exact: boolean, gate?: string): string {
  const cols = ['id', 'metadata']
  cols.push(s.table === 'texts' ? 'text' : 'source')
  if (opts.withEmbeddings === true) cols.push('embedding::text AS embedding')
  const indexed = s.vectorType === 'vector'
    ? `${indexedExpression('vector', s.dim)} <=> ${q}::vector`
    : `${indexedExpression('halfvec', s.dim)} <=> ${q}::vector::halfvec(${s.dim})`
  // MATERIALIZED keeps the index scan (and its LIMIT) inside; "+ 0" stops PostgreSQL 17+ from
  // dropping the outer sort as already satisfied, which would keep the relaxed order
  if (exact || where.length === 0) {
    return `nearest AS MATERIALIZED (
    SELECT ${cols.join(', ')}, embedding <=> ${q}::vector AS distance
    FROM ${s.table}
    ${whereOf(where)}
    ORDER BY ${exact ? `(embedding <=> ${q}::vector) + 0` : indexed}
    LIMIT ${k}
  )`
  }
  // the walk: the conditions stay outside the ordered scan, which OFFSET 0 keeps a subquery of its
  // own, planned to bring its first k rows: so the HNSW walk drives, whatever the estimate of the
  // filter's selectivity (an estimate of few matches made the planner read and sort them all)
  return `nearest AS MATERIALIZED (
    SELECT ${cols.join(', ')}, distance
    FROM (SELECT *, embedding <=> ${q}::vector AS distance FROM ${s.table} ORDER BY ${indexed} OFFSET 0) ${s.table}
    ${whereOf(gate === undefined ? where : [...where, gate])}
    LIMIT ${k}
  )`
}

/**
 * The statement for one search (exported for the tests' EXPLAIN): with `bind` a binder, bind
 * parameters in `values`; with a literalBinder, a self-contained text. `exact`: order by an
 * expression no index has, so the rows come from the filter's indexes and are sorted exactly.
 */
export function searchStatement (s: SearchSettings, query: Float32Array, opts: VectorSearchOptions, exact = false, values: unknown[] = [], bind: Bind = binder(values)): { text: string, values: unknown[] } {
  const q = bind(toVectorLiteral(query))
  const where = conditions(s, parseFilter(opts.filter), opts, bind, exact)
  const text = `WITH ${nearestSql(s, opts, q, where, bind(opts.k), exact)}
  SELECT * FROM nearest ORDER BY distance + 0`
  return { text, values }
}

/** the transaction-local setting in which plannedStatement leaves its count, for the gated walk after it */
const MATCHES_SETTING = 'align_search.matches'

/**
 * The walk that follows plannedStatement in the same message: it runs only when the count there was
 * over `cutoff` (a One-Time Filter on the setting the count left), so a filtered search is one round
 * trip whichever path it takes.
 */
export function gatedWalkStatement (s: SearchSettings, query: Float32Array, opts: VectorSearchOptions, cutoff: number, bind: Bind = literalBinder()): string {
  const q = bind(toVectorLiteral(query))
  const where = conditions(s, parseFilter(opts.filter), opts, bind, false)
  const gate = `current_setting('${MATCHES_SETTING}')::int > ${bind(cutoff)}`
  return `WITH ${nearestSql(s, opts, q, where, bind(opts.k), false, gate)}
  SELECT * FROM nearest ORDER BY distance + 0`
}

function countSql (s: SearchSettings, where: string[], limit: string): string {
  return `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${s.table} ${whereOf(where)} LIMIT ${limit}) m`
}

/** How many rows a filter matches, counted up to `limit` (exported for the tests' EXPLAIN). */
export function countStatement (s: SearchSettings, opts: VectorSearchOptions, limit: number): { text: string, values: unknown[] } {
  const values: unknown[] = []
  const bind = binder(values)
  const where = conditions(s, parseFilter(opts.filter), opts, bind, true)
  return { text: countSql(s, where, bind(limit)), values }
}

/**
 * The count and the exact path as one statement, so that a selective filter costs one round trip:
 * the count (up to `cutoff` + 1, as countStatement) is an InitPlan, and the exact path (as
 * searchStatement's) runs behind a One-Time Filter on it, so with more than `cutoff` matches it reads
 * nothing. Every row carries `matches`; with none nearest, one row of NULLs carries it.
 */
export function plannedStatement (s: SearchSettings, query: Float32Array, opts: VectorSearchOptions, cutoff: number, values: unknown[] = [], bind: Bind = binder(values)): { text: string, values: unknown[] } {
  const q = bind(toVectorLiteral(query))
  const where = conditions(s, parseFilter(opts.filter), opts, bind, true)
  const cut = bind(cutoff)
  const text = `WITH counted AS MATERIALIZED (SELECT n, set_config('${MATCHES_SETTING}', n::text, true) FROM (${countSql(s, where, `${cut} + 1`)}) c),
  ${nearestSql(s, opts, q, [...where, `(SELECT n FROM counted) <= ${cut}`], bind(opts.k), true)}
  SELECT counted.n AS matches, nearest.* FROM counted LEFT JOIN nearest ON true ORDER BY nearest.distance + 0`
  return { text, values }
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

/** searchSettings after exactSettings in the same transaction: the planner's settings back to their defaults first */
function walkSettings (s: SearchSettings, opts: VectorSearchOptions): string {
  return `SET LOCAL enable_seqscan TO DEFAULT; SET LOCAL enable_hashjoin TO DEFAULT; SET LOCAL enable_mergejoin TO DEFAULT; SET LOCAL jit TO DEFAULT; ${searchSettings(s, opts)}`
}

/**
 * The most matches scored exactly, for a table of about `rows` rows: where the two paths cost the
 * same. The exact path costs about its matches m (counted, read and scored); the walk about the
 * k / selectivity = k × rows / m candidates it checks; they meet at m = √(k × rows × EXACT_COST_RATIO).
 * Measured over the bench's filter grid, 256-d, ef_search 32, one search at a time:
 * a walked candidate costs 2–5× an exactly scored match, and more where the filter shuns the
 * query's neighbourhood (a 1% filter at 200k: exact 13–19 ms, the walk 67–93 ms). Hence 5: at 200k
 * the cutoff is 3,162, and 1% (2,000 matches) is scored exactly. Without an estimate of the rows
 * yet: EXACT_MAX_MATCHES.
 */
export function exactCutoff (k: number, rows: number | undefined): number {
  if (rows === undefined || !(rows > 0)) return EXACT_MAX_MATCHES
  return Math.round(Math.min(EXACT_MAX_MATCHES * 10, Math.max(EXACT_MAX_MATCHES / 10, Math.sqrt(k * rows * EXACT_COST_RATIO))))
}

/** the walk's cost per candidate over the exact path's per match (see exactCutoff) */
const EXACT_COST_RATIO = 5

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
  /** walks of a filter known to match many (FilterPlan 'walk'), with no count before them */
  walkUncounted: number
  /** plain searches that came back short (dead rows) and walked again with the iterative scan */
  plainRetries: number
}

export function newSearchCounters (): SearchCounters {
  return { exact: 0, walk: 0, walkThenExact: 0, walkUncounted: 0, plainRetries: 0 }
}

/** `sets` and `statement` (literals only) as one message: one round trip, one implicit transaction that the SET LOCALs last for */
async function runMessage<T extends pg.QueryResultRow> (pool: pg.Pool, sets: string, statement: string): Promise<T[]> {
  const results = await pool.query(`${sets}; ${statement}`) as unknown as Array<pg.QueryResult<T>>
  return results.at(-1)?.rows ?? []
}

/**
 * How a filtered search starts: `count` the filter's matches first (the exact path when few, the
 * walk when many, in one message), or `walk` straight away, for a filter known to match more than
 * the cutoff (./metadata-sample.ts); a walk that comes back short takes the exact path either way.
 */
export type FilterPlan = 'count' | 'walk'
export type ChoosePlan = (filter: FilterNode, cutoff: number) => FilterPlan

export async function searchNearest (pool: pg.Pool, s: SearchSettings, query: Float32Array, opts: VectorSearchOptions,
  counters: SearchCounters = newSearchCounters(), choosePlan: ChoosePlan = () => 'count'): Promise<VectorHit[]> {
  if (opts.k <= 0) return []
  const filter = parseFilter(opts.filter)
  const excluding = opts.excludeIds !== undefined && opts.excludeIds.length > 0
  const literal = (exact: boolean): string => searchStatement(s, query, opts, exact, [], literalBinder()).text
  const iterativeWalk = async (): Promise<HitRow[]> => await runMessage<HitRow>(pool, searchSettings(s, opts), literal(false))
  // a filtered walk short of k: max_scan_tuples ran out (or pgvector 0.7), or the filter matches fewer than thought
  const exactIfShort = async (walked: HitRow[]): Promise<HitRow[]> => {
    if (walked.length >= opts.k) return walked
    counters.walkThenExact++
    return await runMessage<HitRow>(pool, exactSettings(s), literal(true))
  }
  let rows: HitRow[]
  if (filter === undefined) {
    if (!excluding && s.sessionDefaults === true && efFor(s, opts) === Math.min(MAX_EF_SEARCH, s.efSearch)) {
      rows = (await pool.query<HitRow>(searchStatement(s, query, opts))).rows
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
    const cutoff = s.exactMaxMatches ?? exactCutoff(opts.k, s.rowsEstimate)
    if (choosePlan(filter, cutoff) === 'walk') {
      counters.walk++
      counters.walkUncounted++
      rows = await exactIfShort(await iterativeWalk())
    } else {
      // one round trip: the count, the exact path behind it, and the walk gated on it
      const results = await pool.query(`${exactSettings(s)}; ${plannedStatement(s, query, opts, cutoff, [], literalBinder()).text}; ` +
        `${walkSettings(s, opts)}; ${gatedWalkStatement(s, query, opts, cutoff)}`) as unknown as Array<pg.QueryResult<HitRow & { matches: number }>>
      const planned = results.find((r) => r.fields.some((f) => f.name === 'matches'))?.rows ?? []
      const matches = planned[0]?.matches ?? 0
      if (matches <= cutoff) {
        if (matches > 0) counters.exact++
        rows = planned.filter((r) => r.id !== null)
      } else {
        counters.walk++
        rows = await exactIfShort(results.at(-1)?.rows ?? [])
      }
    }
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
