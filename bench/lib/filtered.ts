/**
 * Filtered search for the backends section: a grid of exact-match, `$in` and range filters at 0.1%,
 * 1%, 10% and 50% selectivity over metadata every row carries, the exact filtered ranking per query
 * (brute force over the matching rows), and per-query latencies for p50/p99.
 */
import type { Backend } from '../../src/backends/ports.js'
import { row } from './vectors.js'

export const SELECTIVITIES = [0.001, 0.01, 0.1, 0.5] as const
export const FILTER_KINDS = ['exact', '$in', 'range'] as const
export type FilterKind = typeof FILTER_KINDS[number]

/** a number in [0, 1) from i, uncorrelated with the row's vector (Knuth's multiplicative hash) */
export function hash01 (i: number): number {
  return Math.round((Math.imul(i + 1, 2654435761) >>> 0) / 2 ** 32 * 1e6) / 1e6
}

/** the metadata row i carries: buckets of 1/1000, 1/100, 1/10, 1/2, and a uniform number */
export function filterMetadata (i: number): Record<string, number> {
  return { b1000: i % 1000, bucket: i % 100, b10: i % 10, b2: i % 2, u: hash01(i) }
}

export interface GridFilter { kind: FilterKind, selectivity: number, filter: (qi: number) => Record<string, unknown>, matches: (qi: number, i: number) => boolean }

function spread (count: number, modulo: number, qi: number): number[] {
  return Array.from({ length: count }, (_, j) => (qi * count + j) % modulo)
}

export function gridFilter (kind: FilterKind, selectivity: number): GridFilter {
  if (kind === 'range') {
    const lo = (qi: number): number => Math.floor(hash01(qi + 7777) * (1 - selectivity) * 1e6) / 1e6
    return {
      kind,
      selectivity,
      filter: (qi) => ({ u: { $gte: lo(qi), $lt: lo(qi) + selectivity } }),
      matches: (qi, i) => { const u = hash01(i); return u >= lo(qi) && u < lo(qi) + selectivity }
    }
  }
  const [key, modulo] = selectivity === 0.001 ? ['b1000', 1000] : selectivity === 0.01 ? ['bucket', 100] : selectivity === 0.1 ? ['b10', 10] : ['b2', 2]
  if (kind === 'exact') return { kind, selectivity, filter: (qi) => ({ [key]: qi % modulo }), matches: (qi, i) => i % modulo === qi % modulo }
  // $in over many values: 0.1% = 1 of 1000 values, 1% = 10, 10% = 100, 50% = 50 of 100 buckets
  const [inKey, inModulo, count] = selectivity === 0.5 ? ['bucket', 100, 50] : ['b1000', 1000, Math.round(selectivity * 1000)]
  const sets: Array<Set<number> | undefined> = []
  return {
    kind,
    selectivity,
    filter: (qi) => ({ [inKey]: { $in: spread(count, inModulo, qi) } }),
    // one set per query, not one array per row: the truth at 1M rows calls this 10^6 times a query
    matches: (qi, i) => { if (sets[qi] === undefined) sets[qi] = new Set(spread(count, inModulo, qi)); return sets[qi].has(i % inModulo) }
  }
}

/** per grid filter, per query: the exact top-k row indices among the matching rows, best first */
export function filteredTruths (data: Float32Array, queries: Float32Array, dim: number, k: number, filters: GridFilter[]): number[][][] {
  const n = data.length / dim
  const nq = queries.length / dim
  const scores = new Float32Array(n)
  const out = filters.map(() => new Array<number[]>(nq))
  for (let qi = 0; qi < nq; qi++) {
    const q = row(queries, qi, dim)
    for (let i = 0; i < n; i++) {
      let s = 0
      for (let j = 0; j < dim; j++) s += data[i * dim + j]! * q[j]!
      scores[i] = s
    }
    filters.forEach((f, fi) => {
      const matching: number[] = []
      for (let i = 0; i < n; i++) if (f.matches(qi, i)) matching.push(i)
      out[fi]![qi] = matching.sort((a, b) => scores[b]! - scores[a]!).slice(0, k)
    })
  }
  return out
}

export interface LatencyRun { recall: number, minHits: number, qps: number, p50: number, p99: number }

function percentile (sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0
}

/** one query at a time: recall@k against `truth` (row indices; none for the unfiltered baseline's own truth), QPS, p50/p99 ms */
export async function runQueries (b: Backend, queries: Float32Array, dim: number, k: number, idOf: (id: string) => number,
  filter: ((qi: number) => Record<string, unknown>) | undefined, truth: (qi: number, found: number[]) => number): Promise<LatencyRun> {
  const nq = queries.length / dim
  for (let i = 0; i < Math.min(10, nq); i++) await b.images.search(row(queries, i, dim), { k, ...(filter === undefined ? {} : { filter: filter(i) }) })
  const ms: number[] = []
  let recall = 0
  let minHits = k
  const t0 = performance.now()
  for (let qi = 0; qi < nq; qi++) {
    const s = performance.now()
    const hits = await b.images.search(row(queries, qi, dim), { k, ...(filter === undefined ? {} : { filter: filter(qi) }) })
    ms.push(performance.now() - s)
    recall += truth(qi, hits.map((h) => idOf(h.id)))
    minHits = Math.min(minHits, hits.length)
  }
  const wall = performance.now() - t0
  ms.sort((a, b) => a - b)
  return { recall: recall / nq, minHits, qps: nq / (wall / 1000), p50: percentile(ms, 0.5), p99: percentile(ms, 0.99) }
}
