/**
 * Section "scaling": what pgvector costs per vector, the figures docs/scaling.md extrapolates from.
 * At 256-d (align-mini) and 640-d (ALIGN), for the `vector` column indexed as `vector` and as
 * `halfvec` (PG_VECTOR_TYPE), with the backend's HNSW parameters (M 16, ef_construction 200):
 *   - bytes per vector: the value itself, a table row, the HNSW index;
 *   - HNSW build rate on one core (CREATE INDEX without parallel workers) and insert rate in
 *     batches of 32 into the built index (what ingest does);
 *   - search QPS per core at ef_search 64 (the backend process's CPU, from /proc), with recall@10.
 * The data are clustered synthetic unit vectors (a perturbed set, as in the ANN section).
 */
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import pg from 'pg'
import { startTestPostgres } from '../scripts/lib/postgres-server.js'
import { machineInfo } from './lib/machine.js'
import { fmt } from './lib/stats.js'
import type { BenchOptions, Cell, SectionResult } from './lib/types.js'
import { perturb, randomUnit } from './lib/vectors.js'

const N = 20_000
const INSERTS = 2000
const QUERIES = 300
const K = 10
const EF_SEARCH = 64
const M = 16
const EF_CONSTRUCTION = 200
const DIMS = [256, 640]
const TYPES = ['vector', 'halfvec'] as const

/** user + system ms of one process (a PostgreSQL backend), from /proc */
function cpuMs (pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) * 10
  } catch {
    return Number.NaN
  }
}

const literal = (v: Float32Array): string => `[${Array.from(v).join(',')}]`

function exactTopK (data: Float32Array, dim: number, q: Float32Array, k: number): number[] {
  const n = data.length / dim
  const scores: Array<[number, number]> = []
  for (let i = 0; i < n; i++) {
    let s = 0
    for (let j = 0; j < dim; j++) s += data[i * dim + j]! * q[j]!
    scores.push([s, i])
  }
  return scores.sort((a, b) => b[0] - a[0]).slice(0, k).map(([, i]) => i)
}

interface Measured {
  dim: number
  type: typeof TYPES[number]
  valueBytes: number
  rowBytes: number
  indexBytes: number
  buildPerCoreS: number
  buildWallS: number
  insertPerCoreS: number
  qpsPerCore: number
  qpsWall: number
  recall: number
}

async function measureDim (c: pg.Client, pid: number, dim: number, seed: number): Promise<Measured[]> {
  // clustered like embeddings: N/20 centres, each with 20 neighbours at cosine ≈ 0.92
  const sigma = 0.3 / Math.sqrt(dim)
  const base = randomUnit(N / 20, dim, seed)
  const data = perturb(base, dim, N, sigma, seed + 1)
  const more = perturb(base, dim, INSERTS, sigma, seed + 2)
  const queries = perturb(base, dim, QUERIES, sigma, seed + 3)
  await c.query('DROP TABLE IF EXISTS vecs')
  await c.query(`CREATE TABLE vecs (id int PRIMARY KEY, embedding vector(${dim}) NOT NULL)`)
  for (let s = 0; s < N; s += 1000) {
    const ids = Array.from({ length: Math.min(1000, N - s) }, (_, i) => s + i)
    await c.query('INSERT INTO vecs SELECT i, v::vector FROM unnest($1::int[], $2::text[]) AS u(i, v)', [ids, ids.map((i) => literal(data.subarray(i * dim, (i + 1) * dim)))])
  }
  await c.query('VACUUM ANALYZE vecs')
  const row = (await c.query<{ rel: string, value: number }>("SELECT pg_table_size('vecs')::text AS rel, (SELECT avg(pg_column_size(embedding))::float FROM vecs) AS value")).rows[0]!
  const truth = Array.from({ length: QUERIES }, (_, q) => exactTopK(data, dim, queries.subarray(q * dim, (q + 1) * dim), K))
  const out: Measured[] = []
  for (const type of TYPES) {
    const expr = type === 'vector' ? 'embedding' : `(embedding::halfvec(${dim}))`
    const ops = type === 'vector' ? 'vector_cosine_ops' : 'halfvec_cosine_ops'
    await c.query('SET max_parallel_maintenance_workers = 0')
    await c.query("SET maintenance_work_mem = '1GB'")
    const cpu0 = cpuMs(pid)
    const t0 = performance.now()
    await c.query(`CREATE INDEX vecs_hnsw ON vecs USING hnsw (${expr} ${ops}) WITH (m = ${M}, ef_construction = ${EF_CONSTRUCTION})`)
    const buildWallS = (performance.now() - t0) / 1000
    const buildCpuS = (cpuMs(pid) - cpu0) / 1000
    const indexBytes = Number((await c.query<{ b: string }>("SELECT pg_relation_size('vecs_hnsw')::text AS b")).rows[0]!.b) / N

    await c.query(`SET hnsw.ef_search = ${EF_SEARCH}`)
    const search = `SELECT id FROM vecs ORDER BY ${expr} <=> $1::${type}(${dim}) LIMIT ${K}`
    await c.query(search, [literal(queries.subarray(0, dim))]) // warm the cache
    let hits = 0
    const q0 = cpuMs(pid)
    const s0 = performance.now()
    for (let q = 0; q < QUERIES; q++) {
      const r = await c.query<{ id: number }>(search, [literal(queries.subarray(q * dim, (q + 1) * dim))])
      const want = new Set(truth[q])
      hits += r.rows.filter((x) => want.has(x.id)).length
    }
    const qpsWall = QUERIES / ((performance.now() - s0) / 1000)
    const qpsPerCore = QUERIES / ((cpuMs(pid) - q0) / 1000)

    const i0 = cpuMs(pid)
    for (let s = 0; s < INSERTS; s += 32) {
      const ids = Array.from({ length: Math.min(32, INSERTS - s) }, (_, i) => N + s + i)
      await c.query('INSERT INTO vecs SELECT i, v::vector FROM unnest($1::int[], $2::text[]) AS u(i, v)', [ids, ids.map((i) => literal(more.subarray((i - N) * dim, (i - N + 1) * dim)))])
    }
    const insertPerCoreS = INSERTS / ((cpuMs(pid) - i0) / 1000)
    await c.query('DELETE FROM vecs WHERE id >= $1', [N])
    await c.query('DROP INDEX vecs_hnsw')
    await c.query('VACUUM vecs')
    out.push({
      dim,
      type,
      valueBytes: type === 'vector' ? row.value : 2 * dim + 8,
      rowBytes: Number(row.rel) / N,
      indexBytes,
      buildPerCoreS: N / buildCpuS,
      buildWallS: N / buildWallS,
      insertPerCoreS,
      qpsPerCore,
      qpsWall,
      recall: hits / (QUERIES * K)
    })
  }
  await c.query('DROP TABLE vecs')
  return out
}

export async function scalingSection (opts: BenchOptions, log: (m: string) => void): Promise<SectionResult> {
  const started = performance.now()
  const machine = machineInfo()
  const db = await startTestPostgres({ engine: 'server' })
  if (!('url' in db)) {
    return { id: 'scaling', title: 'Scaling: pgvector per vector', machine, skipped: `no PostgreSQL server: ${db.skip}`, dataset: '', params: {}, tables: [], targets: [], notes: [], wallMs: performance.now() - started }
  }
  const c = new pg.Client({ connectionString: db.url })
  await c.connect()
  try {
    await c.query('CREATE EXTENSION IF NOT EXISTS vector')
    const version = (await c.query<{ v: string }>("SELECT extversion AS v FROM pg_extension WHERE extname = 'vector'")).rows[0]!.v
    const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid
    const results: Measured[] = []
    for (const dim of DIMS) {
      log(`scaling: ${N} vectors at ${dim}-d`)
      results.push(...await measureDim(c, pid, dim, opts.seed + dim))
    }
    const rows: Cell[][] = results.map((r) => [
      r.dim, r.type, fmt(r.valueBytes), fmt(r.rowBytes), fmt(r.indexBytes), fmt(r.buildPerCoreS), fmt(r.insertPerCoreS), fmt(r.qpsPerCore), fmt(r.qpsWall), fmt(r.recall)
    ])
    return {
      id: 'scaling',
      title: 'Scaling: pgvector per vector, per core',
      machine,
      dataset: `${N} clustered synthetic unit vectors per dimension (${N / 20} centres, cosine ≈ 0.92 to their centre); ${QUERIES} queries drawn the same way, never inserted`,
      params: { pgvector: version, postgres: db.kind, M, efConstruction: EF_CONSTRUCTION, efSearch: EF_SEARCH, k: K, inserts: INSERTS },
      tables: [{
        title: 'Bytes, build, insert and search per vector',
        columns: ['dim', 'index type', 'value bytes', 'table bytes/row (id + vector, TOAST included)', 'HNSW bytes/vector', 'build vectors/s per core', 'insert vectors/s per core (batches of 32)', 'search QPS per core', 'search QPS, one connection', 'recall@10'],
        rows,
        note: 'Per core = counted against the CPU time of the PostgreSQL backend that did the work (/proc), so the client on the same machine does not count. A 640-d float32 value (2,568 bytes) is over the 2 kB TOAST threshold of PostgreSQL, so it is stored out of line: the row keeps a pointer. The build runs with max_parallel_maintenance_workers = 0 and maintenance_work_mem = 1GB (the graph fits in memory). `value bytes` of halfvec is what the index stores per element (2·dim + 8); the table keeps float32.'
      }],
      targets: [],
      notes: [`Measured at N = ${N}: HNSW bytes per vector hardly change with N (a fixed-size element tuple and neighbour list per vector); build and search cost grow slowly (about log N hops). docs/scaling.md extrapolates from these figures.`],
      wallMs: performance.now() - started,
      raw: { results }
    }
  } finally {
    await c.end()
    await db.stop()
  }
}
