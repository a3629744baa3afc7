/**
 * Small vector helpers over Float32Array, shared by the encoder (output normalization)
 * and by query arithmetic elsewhere (image + text queries, cosine scores).
 * All functions throw a RangeError on a dimension mismatch rather than reading past the end.
 */

function sameLength (a: Float32Array, b: Float32Array): void {
  if (a.length !== b.length) throw new RangeError(`vector length mismatch: ${a.length} vs ${b.length}`)
}

/** Dot product of two vectors of the same length. */
export function dot (a: Float32Array, b: Float32Array): number {
  sameLength(a, b)
  let s = 0
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!
  return s
}

/** Euclidean (L2) norm. */
export function norm (v: Float32Array): number {
  let s = 0
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!
  return Math.sqrt(s)
}

/**
 * Scales `v` to unit L2 norm, in place, and returns it. A zero vector stays zero
 * (there is no direction to keep, and NaNs would poison an index).
 */
export function l2normalizeInPlace (v: Float32Array): Float32Array {
  const n = norm(v)
  if (n > 0) {
    const inv = 1 / n
    for (let i = 0; i < v.length; i++) v[i] = v[i]! * inv
  }
  return v
}

/** A unit-length copy of `v`; `v` is left untouched. A zero vector gives a zero vector. */
export function l2normalize (v: Float32Array): Float32Array {
  return l2normalizeInPlace(Float32Array.from(v))
}

/**
 * A computed cosine clamped to [-1, 1]: rounding makes a vector's cosine with itself come out as
 * 1.0000000000000002 (or 1.0000001 from float32 distances), which is not a cosine.
 */
export function clampCosine (c: number): number {
  return c > 1 ? 1 : c < -1 ? -1 : c
}

/** Cosine similarity in [-1, 1]; 0 when either vector is zero. Works on unnormalized vectors. */
export function cosine (a: Float32Array, b: Float32Array): number {
  const na = norm(a)
  const nb = norm(b)
  if (na === 0 || nb === 0) return 0
  return clampCosine(dot(a, b) / (na * nb))
}

/**
 * Σ weights[i] · vectors[i], as a new vector (not normalized: wrap in `l2normalize` for a query).
 * Weights default to 1. Used for ALIGN-style query arithmetic, e.g. image("waving hand") + text("dark skin tone").
 */
export function weightedSum (vectors: Float32Array[], weights?: number[]): Float32Array {
  const first = vectors[0]
  if (first === undefined) throw new RangeError('weightedSum needs at least one vector')
  if (weights !== undefined && weights.length !== vectors.length) {
    throw new RangeError(`weightedSum: ${vectors.length} vectors but ${weights.length} weights`)
  }
  const out = new Float32Array(first.length)
  vectors.forEach((v, k) => {
    sameLength(out, v)
    const w = weights?.[k] ?? 1
    for (let i = 0; i < v.length; i++) out[i] = out[i]! + w * v[i]!
  })
  return out
}
