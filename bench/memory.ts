/**
 * Section 5, memory: RSS of the project's HNSW index (src/index/hnsw-index.ts) holding N vectors,
 * measured in a fresh child process (so nothing else in the benchmark pollutes it), against the
 * theoretical bytes N·dim·4 (vectors) + N·2M·4 (level-0 links) and an itemized hnswlib estimate.
 *
 * Run as a child: BENCH_MEMORY_CHILD='{"n":…,"dim":…,…}' node --expose-gc --import tsx bench/memory.ts
 */
import { spawn } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { machineInfo } from './lib/machine.js'
import { fmt, gc, MiB, ratio } from './lib/stats.js'
import type { BenchOptions, SectionResult } from './lib/types.js'
import type { PoolEmbeddings } from './lib/pool.js'
import { deriveSigma, perturb } from './lib/vectors.js'

interface ChildParams { n: number, dim: number, M: number, efConstruction: number, seed: number, baseFile: string, sigma: number }
interface ChildResult extends ChildParams { rssBefore: number, rssAfter: number, heapDelta: number, externalDelta: number, capacity: number, buildMs: number }

const PER_100K = 100_000
/** a fixed glibc mmap threshold: large temporary buffers are then unmapped when freed instead of staying in the heap */
const MMAP_THRESHOLD = 65536

async function child (p: ChildParams): Promise<ChildResult> {
  const { HnswIndex } = await import('../src/backends/sqlite/hnsw/hnsw-index.js')
  // the growth path the service takes: start small, double when full
  const index = HnswIndex.create(p.dim, { M: p.M, efConstruction: p.efConstruction })
  const raw = await readFile(p.baseFile)
  const base = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4)
  gc()
  const m0 = process.memoryUsage()
  const t0 = performance.now()
  const chunk = 1000
  for (let start = 0; start < p.n; start += chunk) {
    // generated chunk by chunk and dropped, so only the index stays resident
    const b = Math.min(chunk, p.n - start)
    const data = perturb(base, p.dim, b, p.sigma, p.seed + start, start)
    await index.add(Array.from({ length: b }, (_, i) => start + i), Array.from({ length: b }, (_, i) => data.subarray(i * p.dim, (i + 1) * p.dim)))
  }
  const buildMs = performance.now() - t0
  gc()
  const m1 = process.memoryUsage()
  return { ...p, rssBefore: m0.rss, rssAfter: m1.rss, heapDelta: m1.heapUsed - m0.heapUsed, externalDelta: m1.external - m0.external, capacity: index.capacity, buildMs }
}

async function runChild (p: ChildParams, env: Record<string, string> = {}): Promise<ChildResult> {
  const self = fileURLToPath(import.meta.url)
  return await new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', self], { env: { ...process.env, ...env, BENCH_MEMORY_CHILD: JSON.stringify(p) }, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    proc.stdout.on('data', (d: Buffer) => { out += d.toString() })
    proc.on('error', reject)
    proc.on('exit', (code) => {
      if (code !== 0) { reject(new Error(`memory child exited with ${code}`)); return }
      try { resolve(JSON.parse(out.trim().split('\n').at(-1)!) as ChildResult) } catch (err) { reject(err instanceof Error ? err : new Error(String(err))) }
    })
  })
}

/**
 * hnswlib's layout (hnswalg.h), per element: level-0 block = 4-byte count + maxM0·4 links (maxM0 = 2M)
 * + dim·4 vector + 8-byte label; upper levels: on average 1/(M−1) levels of (4 + M·4) bytes, plus a
 * malloc header; and per slot of capacity: a std::mutex (40), a level int (4), a link-list pointer (8),
 * plus a label_lookup_ hash node (~32) per element and the project's 1-byte state per label.
 */
function hnswlibEstimate (n: number, capacity: number, dim: number, M: number): number {
  const level0 = 4 + 2 * M * 4 + dim * 4 + 8
  const upper = (1 / (M - 1)) * (4 + M * 4 + 16)
  const perSlot = 40 + 4 + 8
  const lookup = 32
  return n * (level0 + upper + lookup + 1) + capacity * perSlot
}

export async function memorySection (opts: BenchOptions, pool: PoolEmbeddings, log: (m: string) => void): Promise<SectionResult> {
  const started = performance.now()
  const machine = machineInfo()
  const { dim } = pool
  const baseFile = path.join(opts.workDir, 'memory-base.f32')
  await mkdir(opts.workDir, { recursive: true })
  await writeFile(baseFile, new Uint8Array(pool.images.buffer, pool.images.byteOffset, pool.images.byteLength))
  const sigma = opts.sigma ?? deriveSigma(pool.images, dim).sigma
  const p: ChildParams = { n: opts.n, dim, M: opts.M, efConstruction: opts.efConstruction, seed: opts.seed, baseFile, sigma }
  log(`memory: child process building the project index with ${p.n} vectors`)
  const r = await runChild(p)
  log('memory: again with MALLOC_MMAP_THRESHOLD_=65536')
  const fixedMmap = await runChild(p, { MALLOC_MMAP_THRESHOLD_: String(MMAP_THRESHOLD) })
  const measured = r.rssAfter - r.rssBefore
  const measuredFixed = fixedMmap.rssAfter - fixedMmap.rssBefore
  const theory = r.n * (r.dim * 4 + 2 * r.M * 4)
  const estimate = hnswlibEstimate(r.n, r.capacity, r.dim, r.M)
  const scale = PER_100K / r.n
  const rows = [
    ['measured RSS delta (glibc malloc defaults)', fmt(measured / MiB), fmt(measured * scale / MiB), fmt(measured / r.n), fmt(ratio(measured, theory))],
    [`measured RSS delta (MALLOC_MMAP_THRESHOLD_=${MMAP_THRESHOLD})`, fmt(measuredFixed / MiB), fmt(measuredFixed * scale / MiB), fmt(measuredFixed / r.n), fmt(ratio(measuredFixed, theory))],
    ['theoretical N·dim·4 + N·2M·4', fmt(theory / MiB), fmt(theory * scale / MiB), fmt(theory / r.n), '1'],
    [`hnswlib layout estimate (capacity ${r.capacity.toLocaleString('en-US')})`, fmt(estimate / MiB), fmt(estimate * scale / MiB), fmt(estimate / r.n), fmt(ratio(estimate, theory))],
    ['  of which V8 heap / external', `${fmt(r.heapDelta / MiB)} / ${fmt(r.externalDelta / MiB)}`, '', '', '']
  ]
  return {
    id: 'memory',
    title: 'Memory: RSS of the project index per 100k images',
    machine,
    dataset: `${r.n.toLocaleString('en-US')} vectors of the ANN section's pool-perturbed set (σ ${fmt(sigma)}), dim ${r.dim}; hnswlib's memory hardly depends on the data: every level-0 block has a fixed size`,
    params: { N: r.n, dim: r.dim, M: r.M, efConstruction: r.efConstruction, 'insert path': 'HnswIndex.create (capacity 1024, ×2 growth) + add() in batches of 1000' },
    tables: [{ title: 'Resident memory of the index', columns: ['what', 'MiB at N', 'MiB per 100k', 'bytes/vector', '÷ theoretical'], rows }],
    targets: [],
    notes: [
      `Measured in a fresh Node process (--expose-gc), RSS after a full GC minus RSS with the empty index; build took ${fmt(r.buildMs / 1000)} s.`,
      `With glibc's defaults the RSS holds ${fmt((measured - measuredFixed) / r.n)} bytes/vector more than the index needs: the mmap threshold rises after the first large free, so later temporary buffers (here the 1 MB chunks of generated vectors and hnswlib-node's per-call copies) come from the heap and their freed pages stay resident. With the threshold fixed (MALLOC_MMAP_THRESHOLD_=${MMAP_THRESHOLD}) the measurement matches the hnswlib layout estimate; a service under ingest load allocates similar temporary buffers, so setting it (or running with jemalloc) is worth trying there.`,
      'The theoretical figure counts only vectors and level-0 links. hnswlib adds per element a link count and a label (12 B), upper-level links (~1/(M−1) levels), a label→slot hash node, and per allocated slot a mutex, a level and a pointer (52 B) — capacity grows ×2, so up to half the slots can be empty.'
    ],
    wallMs: performance.now() - started,
    raw: { ...r, measuredFixedMmap: measuredFixed, theory, estimate }
  }
}

if (process.env.BENCH_MEMORY_CHILD !== undefined && process.argv[1] === fileURLToPath(import.meta.url)) {
  child(JSON.parse(process.env.BENCH_MEMORY_CHILD) as ChildParams)
    .then((r) => { console.log(JSON.stringify(r)) })
    .catch((err: unknown) => { console.error(err); process.exit(1) })
}
