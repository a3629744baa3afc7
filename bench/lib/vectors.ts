/**
 * Vector helpers for the ANN benchmark: a seeded RNG, synthetic data sets, exact brute-force
 * top-k (the baseline and the ground truth) and recall. Every set is one flat Float32Array
 * of n rows × dim, row-major.
 */

/** mulberry32: small, fast, seeded; good enough for benchmark data */
export function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** standard normal samples (Box–Muller, both outputs used) */
export function gaussian (rand: () => number): () => number {
  let spare: number | undefined
  return () => {
    if (spare !== undefined) { const s = spare; spare = undefined; return s }
    const u = 1 - rand()
    const v = rand()
    const r = Math.sqrt(-2 * Math.log(u))
    spare = r * Math.sin(2 * Math.PI * v)
    return r * Math.cos(2 * Math.PI * v)
  }
}

export function normalizeRow (data: Float32Array, row: number, dim: number): void {
  const o = row * dim
  let s = 0
  for (let j = 0; j < dim; j++) s += data[o + j]! * data[o + j]!
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0
  for (let j = 0; j < dim; j++) data[o + j]! *= inv
}

export function row (data: Float32Array, i: number, dim: number): Float32Array {
  return data.subarray(i * dim, (i + 1) * dim)
}

/** n unit vectors drawn uniformly on the sphere */
export function randomUnit (n: number, dim: number, seed: number): Float32Array {
  const g = gaussian(rng(seed))
  const out = new Float32Array(n * dim)
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) out[i * dim + j] = g()
    normalizeRow(out, i, dim)
  }
  return out
}

/**
 * n vectors made from `base` (p rows): row i is normalize(base[i mod p] + σ·g), g ~ N(0, I).
 * The source row is taken round-robin, so every base vector gets ⌈n/p⌉ or ⌊n/p⌋ variants.
 */
export function perturb (base: Float32Array, dim: number, n: number, sigma: number, seed: number, offset = 0): Float32Array {
  const p = base.length / dim
  const g = gaussian(rng(seed))
  const out = new Float32Array(n * dim)
  for (let i = 0; i < n; i++) {
    const src = ((i + offset) % p) * dim
    for (let j = 0; j < dim; j++) out[i * dim + j] = base[src + j]! + sigma * g()
    normalizeRow(out, i, dim)
  }
  return out
}

/** Keeps the k largest scores seen; a binary min-heap on score, root = the current k-th best. */
export class TopK {
  readonly scores: Float32Array
  readonly ids: Int32Array
  size = 0
  constructor (readonly k: number) {
    this.scores = new Float32Array(k)
    this.ids = new Int32Array(k)
  }

  reset (): void { this.size = 0 }

  /** the score a candidate must beat */
  get threshold (): number { return this.size < this.k ? -Infinity : this.scores[0]! }

  push (id: number, score: number): void {
    const { scores, ids } = this
    let i: number
    if (this.size < this.k) {
      i = this.size++
      while (i > 0) { // sift up
        const parent = (i - 1) >> 1
        if (scores[parent]! <= score) break
        scores[i] = scores[parent]!; ids[i] = ids[parent]!
        i = parent
      }
    } else {
      if (score <= scores[0]!) return
      i = 0
      for (;;) { // sift down from the root
        let c = 2 * i + 1
        if (c >= this.k) break
        if (c + 1 < this.k && scores[c + 1]! < scores[c]!) c++
        if (scores[c]! >= score) break
        scores[i] = scores[c]!; ids[i] = ids[c]!
        i = c
      }
    }
    scores[i] = score; ids[i] = id
  }

  /** ids, best first */
  sorted (): { ids: number[], scores: number[] } {
    const order = Array.from({ length: this.size }, (_, i) => i).sort((a, b) => this.scores[b]! - this.scores[a]!)
    return { ids: order.map((i) => this.ids[i]!), scores: order.map((i) => this.scores[i]!) }
  }
}

/** dot product of data row i with q, unrolled by 4 (dim is a multiple of 4 for every model here) */
function dotRow (data: Float32Array, o: number, q: Float32Array, dim: number): number {
  let s0 = 0; let s1 = 0; let s2 = 0; let s3 = 0
  let j = 0
  for (; j + 3 < dim; j += 4) {
    s0 += data[o + j]! * q[j]!
    s1 += data[o + j + 1]! * q[j + 1]!
    s2 += data[o + j + 2]! * q[j + 2]!
    s3 += data[o + j + 3]! * q[j + 3]!
  }
  for (; j < dim; j++) s0 += data[o + j]! * q[j]!
  return s0 + s1 + s2 + s3
}

/**
 * Exact top-k by inner product (= cosine for unit vectors) for ONE query: what a server without
 * an index does per request. This is the QPS baseline.
 */
export function bruteForce (data: Float32Array, dim: number, q: Float32Array, heap: TopK): void {
  heap.reset()
  const n = data.length / dim
  for (let i = 0; i < n; i++) {
    const s = dotRow(data, i * dim, q, dim)
    if (s > heap.threshold) heap.push(i, s)
  }
}

/**
 * Exact top-k for many queries at once, `block` queries per pass over the data so each data row
 * is read from memory once per block. Same arithmetic as `bruteForce`; used for the ground truth only.
 * @returns ids [q × k] best first, the best and the k-th best score per query
 */
export function groundTruth (data: Float32Array, queries: Float32Array, dim: number, k: number, block = 16): Truth {
  const n = data.length / dim
  const nq = queries.length / dim
  const ids = new Int32Array(nq * k)
  const top1 = new Float32Array(nq)
  const kth = new Float32Array(nq)
  const heaps = Array.from({ length: block }, () => new TopK(k))
  for (let q0 = 0; q0 < nq; q0 += block) {
    const b = Math.min(block, nq - q0)
    const qs = Array.from({ length: b }, (_, t) => row(queries, q0 + t, dim))
    for (const h of heaps) h.reset()
    for (let i = 0; i < n; i++) {
      const o = i * dim
      for (let t = 0; t < b; t++) {
        const h = heaps[t]!
        const s = dotRow(data, o, qs[t]!, dim)
        if (s > h.threshold) h.push(i, s)
      }
    }
    for (let t = 0; t < b; t++) {
      const { ids: best, scores } = heaps[t]!.sorted()
      ids.set(best, (q0 + t) * k)
      top1[q0 + t] = scores[0] ?? Number.NaN
      kth[q0 + t] = scores[k - 1] ?? -Infinity
    }
  }
  return { ids, top1, kth, data, queries, dim, k }
}

export interface Truth { ids: Int32Array, top1: Float32Array, kth: Float32Array, data: Float32Array, queries: Float32Array, dim: number, k: number }

/** ties closer than this count as equal (float32 dot products of unit vectors) */
const TIE_EPS = 1e-5

/**
 * recall@k of one query, tie-aware as in ann-benchmarks: a returned id counts when its exact
 * similarity is at least the true k-th best (minus TIE_EPS), so among equal vectors any choice is right.
 */
export function recallAt (found: ArrayLike<number>, truth: Truth, qi: number): number {
  const { data, queries, dim, k } = truth
  const q = queries.subarray(qi * dim, (qi + 1) * dim)
  const bar = truth.kth[qi]! - TIE_EPS
  let hit = 0
  const seen = new Set<number>()
  for (let i = 0; i < Math.min(k, found.length); i++) {
    const id = found[i]!
    if (seen.has(id) || id < 0 || id >= data.length / dim) continue
    seen.add(id)
    if (dotRow(data, id * dim, q, dim) >= bar) hit++
  }
  return hit / k
}

/**
 * Median nearest-neighbour cosine within a set (each row against all others), on up to `sample` rows.
 * Used to pick σ for the synthetic set so its neighbour distances look like the real pool's.
 */
export function medianNnCosine (data: Float32Array, dim: number, sample = 1000): number {
  const n = data.length / dim
  const step = Math.max(1, Math.floor(n / sample))
  const best: number[] = []
  for (let i = 0; i < n; i += step) {
    let b = -Infinity
    const q = row(data, i, dim)
    for (let j = 0; j < n; j++) {
      if (j === i) continue
      const s = dotRow(data, j * dim, q, dim)
      if (s > b) b = s
    }
    best.push(b)
  }
  best.sort((a, b) => a - b)
  return best[Math.floor(best.length / 2)]!
}

/**
 * σ for `perturb` so the synthetic set's neighbour distances look like the real pool's:
 * for unit v, two variants of one source meet at cosine ≈ 1/(1 + σ²·dim), which is set equal to
 * the pool's median nearest-neighbour cosine.
 */
export function deriveSigma (pool: Float32Array, dim: number): { sigma: number, poolNn: number } {
  const poolNn = medianNnCosine(pool, dim)
  return { sigma: Math.sqrt(Math.max(1e-6, 1 / poolNn - 1) / dim), poolNn }
}
