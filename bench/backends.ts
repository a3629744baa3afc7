/**
 * Section "backends": the same vectors stored through each backend's ports (SQLite + hnswlib,
 * pgvector `vector`, pgvector `halfvec`), then recall@10 against exact brute force and search
 * queries/s at each efSearch, and a filtered search that matches 1% of the rows. Ratios are taken
 * against SQLite + hnswlib (speed) and pgvector `vector` (halfvec's recall and index size) in the
 * same run. PostgreSQL comes from DATABASE_URL or a throwaway cluster (test/helpers/postgres.ts);
 * without one the section is skipped with the reason.
 */
import { stat, mkdtemp, rm } from 'node:fs/promises'
import path from 'node:path'
import pg from 'pg'
import { hnswIndexName } from '../src/backends/postgres/migrate.js'
import { openPostgresBackend } from '../src/backends/postgres/open-postgres-backend.js'
import type { PgVectorType } from '../src/backends/postgres/postgres-options.js'
import type { Backend, BackendIdentity } from '../src/backends/ports.js'
import { openSqliteBackend } from '../src/backends/sqlite/open-sqlite-backend.js'
import { startTestPostgres } from '../test/helpers/postgres.js'
import { groundTruthParallel } from './lib/ground-truth.js'
import { machineInfo } from './lib/machine.js'
import { fmt, ratio } from './lib/stats.js'
import type { BenchOptions, Cell, SectionResult, Target } from './lib/types.js'
import { perturb, randomUnit, recallAt, row, type Truth } from './lib/vectors.js'

const DIM = 256
/** rows per cluster: neighbours are variants of one centre, as near-duplicates and one concept's images are */
const PER_CLUSTER = 20
/** cosine between two variants of one centre, ≈ 1/(1 + σ²·dim) */
const VARIANT_COSINE = 0.8
const INSERT_BATCH = 500
/** 1 row in FILTER_BUCKETS carries each `bucket` value: the filtered search matches 1% */
const FILTER_BUCKETS = 100
const CONCURRENCY = 4
const TARGET_QPS_RATIO = 0.5
const TARGET_RECALL = 0.95
const TARGET_FILTERED_RECALL = 0.9

interface Variant { name: string, open: (efSearch: number) => Promise<Backend>, indexBytes: () => Promise<number> }
interface SweepPoint { variant: string, ef: number, recall: number, qps: number, qpsConcurrent: number }
interface FilteredPoint { variant: string, recall: number, minHits: number, qps: number }

const idOf = (i: number): string => `v${i}`
const indexOf = (id: string): number => Number(id.slice(1))

export async function backendsSection (opts: BenchOptions, log: (m: string) => void): Promise<SectionResult> {
  const t0 = performance.now()
  const n = opts.nBackends
  const nq = Math.min(opts.queries, 200)
  const base: SectionResult = { id: 'backends', title: 'Backends: SQLite + hnswlib vs PostgreSQL + pgvector', machine: machineInfo(), dataset: '', params: {}, tables: [], targets: [], notes: [], wallMs: 0 }
  const server = await startTestPostgres({ engine: 'server' })
  if (!('url' in server)) return { ...base, skipped: `no PostgreSQL: ${server.skip}`, wallMs: performance.now() - t0 }
  const scratch = await mkdtemp(path.join(opts.workDir, 'backends-'))
  try {
    const sigma = opts.sigma ?? Math.sqrt((1 / VARIANT_COSINE - 1) / DIM)
    const centres = randomUnit(Math.ceil(n / PER_CLUSTER), DIM, opts.seed)
    const data = perturb(centres, DIM, n, sigma, opts.seed + 1)
    const queries = perturb(centres, DIM, nq, sigma, opts.seed + 2, 7) // other variants of the same centres
    log(`  backends: ${n} vectors, ${nq} queries, ground truth…`)
    const truth = await groundTruthParallel(data, queries, DIM, opts.k)
    const filtered = filteredTruth(data, queries, opts.k)

    const identity: BackendIdentity = { modelId: 'bench-backends', dim: DIM }
    const hnsw = (efSearch: number): { M: number, efConstruction: number, efSearch: number } => ({ M: opts.M, efConstruction: opts.efConstruction, efSearch })
    const sqliteDir = path.join(scratch, 'sqlite')
    const pgVariant = async (vectorType: PgVectorType): Promise<Variant> => {
      const url = await server.newDatabase()
      return {
        name: `pgvector ${vectorType}`,
        open: async (efSearch) => await openPostgresBackend({ databaseUrl: url, poolSize: CONCURRENCY, vectorType, hnsw: hnsw(efSearch) }, identity),
        indexBytes: async () => await pgRelationSize(url, hnswIndexName('images', vectorType))
      }
    }
    const variants: Variant[] = [
      {
        name: 'SQLite + hnswlib',
        open: async (efSearch) => await openSqliteBackend({ dataDir: sqliteDir, hnsw: hnsw(efSearch), checkpointEvery: 10 * n }, identity),
        indexBytes: async () => (await stat(path.join(sqliteDir, 'images.hnsw'))).size
      },
      await pgVariant('vector'),
      await pgVariant('halfvec')
    ]

    const builds: Cell[][] = []
    const sweep: SweepPoint[] = []
    const filteredPoints: FilteredPoint[] = []
    const bytes = new Map<string, number>()
    for (const v of variants) {
      const b = await v.open(opts.efSearch[0] ?? 64)
      const b0 = performance.now()
      for (let i = 0; i < n; i += INSERT_BATCH) {
        const rows = Array.from({ length: Math.min(INSERT_BATCH, n - i) }, (_, j) => ({
          id: idOf(i + j), sha256: `${(i + j).toString(16).padStart(16, '0')}`.padEnd(64, 'a'), width: 1, height: 1,
          metadata: { bucket: (i + j) % FILTER_BUCKETS }, embedding: row(data, i + j, DIM), thumbnail: null
        }))
        await b.images.add(rows)
      }
      const buildMs = performance.now() - b0
      await b.close() // the SQLite index snapshot is written here, so its size can be read
      const size = await v.indexBytes()
      bytes.set(v.name, size)
      builds.push([v.name, fmt(buildMs / 1000), fmt(n / (buildMs / 1000)), fmt(size / 2 ** 20), fmt(size / n)])
      log(`  ${v.name}: stored ${n} in ${fmt(buildMs / 1000)} s, index ${fmt(size / 2 ** 20)} MiB`)
      for (const ef of opts.efSearch) {
        const s = await v.open(ef)
        try {
          const one = await measure(s, queries, nq, truth, opts.k, 1)
          const many = await measure(s, queries, nq, truth, opts.k, CONCURRENCY)
          sweep.push({ variant: v.name, ef, recall: one.recall, qps: one.qps, qpsConcurrent: many.qps })
          log(`    ef ${ef}: recall ${fmt(one.recall)}, ${fmt(one.qps)} QPS (${fmt(many.qps)} with ${CONCURRENCY} at once)`)
          if (ef === 64 || (ef === opts.efSearch.at(-1) && !opts.efSearch.includes(64))) filteredPoints.push({ variant: v.name, ...await measureFiltered(s, queries, nq, filtered, opts.k) })
        } finally {
          await s.close()
        }
      }
    }

    const sqlite = (ef: number): SweepPoint | undefined => sweep.find((p) => p.variant === 'SQLite + hnswlib' && p.ef === ef)
    const vector = (ef: number): SweepPoint | undefined => sweep.find((p) => p.variant === 'pgvector vector' && p.ef === ef)
    const sweepRows: Cell[][] = sweep.map((p) => [p.variant, p.ef, fmt(p.recall), fmt(p.qps), fmt(ratio(p.qps, sqlite(p.ef)?.qps ?? 0)), fmt(p.qpsConcurrent), fmt(ratio(p.qpsConcurrent, sqlite(p.ef)?.qpsConcurrent ?? 0)), p.variant === 'pgvector halfvec' ? fmt(ratio(p.recall, vector(p.ef)?.recall ?? 0)) : '–'])
    const targets: Target[] = []
    // the speed target at the smallest ef where both reach the recall bar
    const atBar = opts.efSearch.find((ef) => (sqlite(ef)?.recall ?? 0) >= TARGET_RECALL && (vector(ef)?.recall ?? 0) >= TARGET_RECALL)
    const qpsRatio = atBar === undefined ? null : ratio(vector(atBar)!.qpsConcurrent, sqlite(atBar)!.qpsConcurrent)
    targets.push({
      section: 'backends',
      name: `pgvector search QPS vs SQLite + hnswlib at recall@10 ≥ ${TARGET_RECALL} (backend level, ${CONCURRENCY} searches at once)`,
      goal: `≥ ${TARGET_QPS_RATIO}×`,
      measured: qpsRatio,
      unit: '×',
      met: qpsRatio === null ? null : qpsRatio >= TARGET_QPS_RATIO,
      detail: atBar === undefined ? `no efSearch in ${opts.efSearch.join('/')} reached the recall bar for both` : `efSearch ${atBar}`
    })
    for (const f of filteredPoints.filter((p) => p.variant.startsWith('pgvector'))) {
      targets.push({
        section: 'backends',
        name: `${f.variant}: filter matching 1% returns k with recall@10 ≥ ${TARGET_FILTERED_RECALL}`,
        goal: `≥ ${TARGET_FILTERED_RECALL}`,
        measured: f.recall,
        unit: 'recall',
        met: f.minHits === opts.k && f.recall >= TARGET_FILTERED_RECALL,
        detail: `fewest hits for one query: ${f.minHits} of ${opts.k}`
      })
    }
    const halfvecBytes = ratio(bytes.get('pgvector halfvec') ?? 0, bytes.get('pgvector vector') ?? 0)
    return {
      ...base,
      dataset: `${n.toLocaleString('en-US')} clustered ${DIM}-d unit vectors (${PER_CLUSTER} variants of each random centre, σ = ${fmt(sigma)}, so variants meet at cosine ≈ ${VARIANT_COSINE}); ${nq} queries are other variants of the same centres`,
      params: { N: n, dim: DIM, queries: nq, M: opts.M, efConstruction: opts.efConstruction, efSearch: opts.efSearch.join('/'), k: opts.k, 'PostgreSQL': server.kind },
      tables: [
        { title: 'Storing the vectors through the backend (add, 500 rows per call)', columns: ['backend', 'seconds', 'rows/s', 'index MiB', 'index bytes/vector'], rows: builds, note: `halfvec's index is ${fmt(halfvecBytes)}× the size of vector's.` },
        { title: 'Search: recall@10 against exact, queries/s one at a time and 4 at once', columns: ['backend', 'efSearch', 'recall@10', 'QPS (1)', '× SQLite', `QPS (${CONCURRENCY})`, '× SQLite', 'recall × vector'], rows: sweepRows },
        { title: `Filtered search, 1 row in ${FILTER_BUCKETS} matches (efSearch 64)`, columns: ['backend', 'recall@10', 'fewest hits', 'QPS (1)'], rows: filteredPoints.map((f) => [f.variant, fmt(f.recall), f.minHits, fmt(f.qps)]) }
      ],
      targets,
      notes: [
        'Backend level: the services and HTTP are not in these figures. The text-search-over-HTTP comparison of issue 11 needs the services on the ports first.',
        `A throwaway cluster runs with fsync and synchronous_commit off, which flatters PostgreSQL's write figures; search figures are unaffected.`,
        'PostgreSQL answers over a socket with three round trips per search (BEGIN + SET LOCALs, the query, COMMIT); hnswlib answers in-process, one search at a time on the event loop, so several at once do not add up there.',
        'halfvec rows: the candidates come from the half-precision index and are re-ordered by the float32 column, so the scores are exact and the recall difference is all in which candidates the index finds.'
      ],
      wallMs: performance.now() - t0,
      raw: { sweep, filtered: filteredPoints, indexBytes: Object.fromEntries(bytes) }
    }
  } finally {
    await server.stop()
    await rm(scratch, { recursive: true, force: true })
  }
}

async function measure (b: Backend, queries: Float32Array, nq: number, truth: Truth, k: number, concurrency: number): Promise<{ recall: number, qps: number }> {
  for (let i = 0; i < Math.min(20, nq); i++) await b.images.search(row(queries, i, DIM), { k }) // warm caches
  let recall = 0
  let next = 0
  const t0 = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let i = next++; i < nq; i = next++) {
      const hits = await b.images.search(row(queries, i, DIM), { k })
      recall += recallAt(hits.map((h) => indexOf(h.id)), truth, i)
    }
  }))
  return { recall: recall / nq, qps: nq / ((performance.now() - t0) / 1000) }
}

/** exact top-k among the rows of query i's bucket (i mod FILTER_BUCKETS) */
function filteredTruth (data: Float32Array, queries: Float32Array, k: number): string[][] {
  const n = data.length / DIM
  return Array.from({ length: queries.length / DIM }, (_, qi) => {
    const q = row(queries, qi, DIM)
    const scored: Array<{ i: number, s: number }> = []
    for (let i = qi % FILTER_BUCKETS; i < n; i += FILTER_BUCKETS) {
      let s = 0
      for (let j = 0; j < DIM; j++) s += data[i * DIM + j]! * q[j]!
      scored.push({ i, s })
    }
    return scored.sort((a, b) => b.s - a.s).slice(0, k).map((x) => idOf(x.i))
  })
}

async function measureFiltered (b: Backend, queries: Float32Array, nq: number, truth: string[][], k: number): Promise<{ recall: number, minHits: number, qps: number }> {
  let recall = 0
  let minHits = k
  const t0 = performance.now()
  for (let i = 0; i < nq; i++) {
    const hits = await b.images.search(row(queries, i, DIM), { k, filter: { bucket: i % FILTER_BUCKETS } })
    const want = new Set(truth[i])
    recall += hits.filter((h) => want.has(h.id)).length / k
    minHits = Math.min(minHits, hits.length)
  }
  return { recall: recall / nq, minHits, qps: nq / ((performance.now() - t0) / 1000) }
}

async function pgRelationSize (url: string, relation: string): Promise<number> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    const r = await c.query<{ n: string }>('SELECT pg_relation_size(to_regclass($1))::text AS n', [relation])
    return Number(r.rows[0]?.n ?? 0)
  } finally {
    await c.end()
  }
}
