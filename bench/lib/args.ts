/** Command-line options of `npm run bench`. */
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import type { BenchOptions } from './types.js'

export const ALL_SECTIONS = ['ann', 'encoders', 'service', 'ingest', 'cluster', 'scaling', 'memory', 'align-base', 'backends', 'photos', 'startup'] as const

export const USAGE = `npm run bench -- [options]
  --n N                 ANN / memory set size (default 100000)
  --n-large N           also run the ANN section at this size, e.g. 1000000 (default 0 = off;
                        opt-in: on 2 cores one HNSW build at 1M takes a long time)
  --n-random N          size of the random-unit ANN set (default 25000; it builds ~5× slower)
  --n-backends N        vectors stored through each backend in the backends section (default 20000;
                        three builds of it, pgvector's at PostgreSQL's insert speed)
  --n-backends-large N  run the backends section at this size instead, e.g. 1000000 (default 0 = off;
                        opt-in: SQLite + hnswlib and pgvector \`vector\` only, PostgreSQL loaded by COPY
                        then CREATE INDEX, a wider efSearch sweep, the filter grid again after deleting
                        5% of the rows, no HTTP run)
  --duration S          seconds per load-test window in the service section (default 10)
  --sections LIST       comma list of ${ALL_SECTIONS.join(', ')} (default all)
  --queries Q           ANN queries (default 1000)
  --ef LIST             efSearch sweep (default 16,32,64,128,256)
  --M M                 HNSW links per node (default 16)
  --ef-construction E   HNSW efConstruction (default 200)
  --sigma S             perturbation σ of the synthetic ANN set (default: derived from the pool)
  --server-env K=V,...  extra environment for the server in the service section, e.g. ENCODER_WORKERS=2
  --server-node-args=A  extra node flags for the server, space-separated, after "=" because they start with
                        dashes, e.g. --server-node-args="--cpu-prof --cpu-prof-dir=bench/out/prof"
  --import-n N          image variants generated for the indexing job / ingest (default 6000)
  --model DIR           model folder (default models/align-mini)
  --pool DIR            demo pool (default demo/pool)
  --out DIR             where report.md / report.json go (default bench)
  --cell-ms MS          measuring time per encoder cell (default 1500)
  --seed N              RNG seed (default 42)`

function num (v: string | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback
  const n = Number(v)
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got "${v}"`)
  return n
}

export function parseBenchArgs (argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      n: { type: 'string' },
      'n-large': { type: 'string' },
      'n-random': { type: 'string' },
      'n-backends': { type: 'string' },
      'n-backends-large': { type: 'string' },
      duration: { type: 'string' },
      sections: { type: 'string' },
      queries: { type: 'string' },
      ef: { type: 'string' },
      M: { type: 'string' },
      'ef-construction': { type: 'string' },
      sigma: { type: 'string' },
      'import-n': { type: 'string' },
      'server-env': { type: 'string' },
      'server-node-args': { type: 'string' },
      model: { type: 'string' },
      pool: { type: 'string' },
      out: { type: 'string' },
      seed: { type: 'string' },
      'cell-ms': { type: 'string' },
      help: { type: 'boolean', short: 'h' }
    },
    strict: true
  })
  if (values.help === true) {
    console.log(USAGE)
    process.exit(0)
  }
  const sections = (values.sections ?? ALL_SECTIONS.join(',')).split(',').map((s) => s.trim()).filter((s) => s !== '')
  for (const s of sections) {
    if (!(ALL_SECTIONS as readonly string[]).includes(s)) throw new Error(`unknown section "${s}"; known: ${ALL_SECTIONS.join(', ')}`)
  }
  const outDir = path.resolve(values.out ?? 'bench')
  return {
    n: Math.floor(num(values.n, 100_000, 'n')),
    nLarge: Math.floor(num(values['n-large'], 0, 'n-large')),
    nRandom: Math.floor(num(values['n-random'], 25_000, 'n-random')),
    nBackends: Math.max(1, Math.floor(num(values['n-backends'], 20_000, 'n-backends'))),
    nBackendsLarge: Math.floor(num(values['n-backends-large'], 0, 'n-backends-large')),
    duration: num(values.duration, 10, 'duration'),
    sections,
    queries: Math.max(1, Math.floor(num(values.queries, 1000, 'queries'))),
    efSearch: (values.ef ?? '16,32,64,128,256').split(',').map((s) => Math.floor(num(s, 64, 'ef'))),
    M: Math.floor(num(values.M, 16, 'M')),
    efConstruction: Math.floor(num(values['ef-construction'], 200, 'ef-construction')),
    sigma: values.sigma === undefined ? undefined : num(values.sigma, 0, 'sigma'),
    k: 10,
    modelDir: path.resolve(values.model ?? 'models/align-mini'),
    poolDir: path.resolve(values.pool ?? 'demo/pool'),
    outDir,
    workDir: path.resolve('bench/out'),
    seed: Math.floor(num(values.seed, 42, 'seed')),
    serverEnv: Object.fromEntries((values['server-env'] ?? '').split(',').filter((kv) => kv.includes('=')).map((kv) => [kv.slice(0, kv.indexOf('=')).trim(), kv.slice(kv.indexOf('=') + 1).trim()])),
    serverNodeArgs: (values['server-node-args'] ?? '').split(' ').filter((a) => a !== ''),
    cellMs: num(values['cell-ms'], 1500, 'cell-ms'),
    importN: Math.floor(num(values['import-n'], 6000, 'import-n')),
    commandLine: ['npm run bench', ...(argv.length > 0 ? ['--', ...argv] : [])].join(' ')
  }
}

export const cores = (): number => os.cpus().length
