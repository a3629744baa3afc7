/** Seeded random unit vectors and exact (brute-force) kNN, for index tests. */

/** mulberry32: a tiny seeded PRNG so failures reproduce */
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

/** `n` random unit vectors of `dim` (Gaussian directions, via Box–Muller) */
export function randomUnitVectors (n: number, dim: number, seed = 1): Float32Array[] {
  const r = rng(seed)
  const out: Float32Array[] = []
  for (let i = 0; i < n; i++) {
    const v = new Float32Array(dim)
    let s = 0
    for (let j = 0; j < dim; j++) {
      const g = Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r())
      v[j] = g
      s += g * g
    }
    const inv = 1 / Math.sqrt(s)
    for (let j = 0; j < dim; j++) v[j] = v[j]! * inv
    out.push(v)
  }
  return out
}

export function dot (a: Float32Array, b: Float32Array): number {
  let s = 0
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!
  return s
}

/** exact top-k labels by cosine (vectors are unit length) among `labels` that pass `keep` */
export function bruteForce (query: Float32Array, vectors: Map<number, Float32Array>, k: number, keep?: (l: number) => boolean): Array<{ label: number, score: number }> {
  const all: Array<{ label: number, score: number }> = []
  for (const [label, v] of vectors) if (keep === undefined || keep(label)) all.push({ label, score: dot(query, v) })
  all.sort((a, b) => b.score - a.score)
  return all.slice(0, k)
}
