/**
 * An int8 copy of the index's unit vectors, by label, for the filtered search's exact path: a
 * filter's few matches are scored in memory (one multiply-add per dimension) instead of reading
 * their float vectors from SQLite (~10 µs a row) or from hnswlib (`getPoint`, ~34 µs a row: it
 * builds a JavaScript array). Each vector keeps its own scale (its largest component ÷ 127), so
 * a cosine is off by about 5e-4 at 256-d: callers re-score the best few from the float vectors.
 * Costs `dim` + 4 bytes a label (256 MiB for 1M rows at 256-d, beside hnswlib's ~1.2 KiB a row).
 */
const MAX_CODE = 127

export class Int8Codes {
  private codes: Int8Array
  /** per label: the code's scale, 0 where the label has no code */
  private scales: Float32Array

  constructor (readonly dim: number, capacity = 1024) {
    this.codes = new Int8Array(capacity * dim)
    this.scales = new Float32Array(capacity)
  }

  get bytes (): number { return this.codes.byteLength + this.scales.byteLength }

  has (label: number): boolean { return (this.scales[label] ?? 0) > 0 }

  /** Stores `v` (any length-`dim` vector; normalized here). An all-zero vector stores nothing. */
  set (label: number, v: ArrayLike<number>): void {
    let norm = 0
    let max = 0
    for (let i = 0; i < this.dim; i++) {
      const x = v[i]!
      norm += x * x
      if (Math.abs(x) > max) max = Math.abs(x)
    }
    if (max === 0) { this.drop(label); return }
    this.grow(label)
    const unit = 1 / Math.sqrt(norm)
    const step = max * unit / MAX_CODE
    const off = label * this.dim
    for (let i = 0; i < this.dim; i++) this.codes[off + i] = Math.round(v[i]! * unit / step)
    this.scales[label] = step
  }

  drop (label: number): void {
    if (label < this.scales.length) this.scales[label] = 0
  }

  /** ≈ cosine of the unit vector `q` with the vector at `label` (which must have a code) */
  dot (q: Float32Array, label: number): number {
    const codes = this.codes
    const off = label * this.dim
    let s = 0
    for (let i = 0; i < this.dim; i++) s += q[i]! * codes[off + i]!
    return s * this.scales[label]!
  }

  private grow (label: number): void {
    if (label < this.scales.length) return
    const capacity = Math.max(label + 1, this.scales.length * 2)
    const codes = new Int8Array(capacity * this.dim)
    codes.set(this.codes)
    const scales = new Float32Array(capacity)
    scales.set(this.scales)
    this.codes = codes
    this.scales = scales
  }
}
