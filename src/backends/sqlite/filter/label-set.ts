/**
 * A set of HNSW labels as a bitmap (32 labels a word): what a filter matches. The metadata index
 * combines them with and / or / and-not in O(labels / 32), the HNSW walk tests membership in O(1)
 * from its filter callback, and the exact path iterates the members.
 */
export class LabelSet {
  private words: Uint32Array

  constructor (capacity = 0) {
    this.words = new Uint32Array(Math.max(1, Math.ceil(capacity / 32)))
  }

  /** labels this set can hold without growing */
  get capacity (): number { return this.words.length * 32 }

  private grow (label: number): void {
    if (label < this.capacity) return
    let n = this.words.length
    while (n * 32 <= label) n *= 2
    const w = new Uint32Array(n)
    w.set(this.words)
    this.words = w
  }

  add (label: number): void {
    this.grow(label)
    this.words[label >>> 5]! |= 1 << (label & 31)
  }

  delete (label: number): void {
    if (label < this.capacity) this.words[label >>> 5]! &= ~(1 << (label & 31))
  }

  has (label: number): boolean {
    const w = this.words[label >>> 5]
    return w !== undefined && (w & (1 << (label & 31))) !== 0
  }

  clone (): LabelSet {
    const out = new LabelSet(0)
    out.words = this.words.slice()
    return out
  }

  /** this ∩ other, in place */
  and (other: LabelSet): this {
    const a = this.words; const b = other.words
    for (let i = 0; i < a.length; i++) a[i] = a[i]! & (b[i] ?? 0)
    return this
  }

  /** this ∪ other, in place */
  or (other: LabelSet): this {
    if (other.words.length > this.words.length) this.grow(other.capacity - 1)
    const a = this.words; const b = other.words
    for (let i = 0; i < b.length; i++) a[i] = a[i]! | b[i]!
    return this
  }

  /** this \ other, in place */
  andNot (other: LabelSet): this {
    const a = this.words; const b = other.words
    const n = Math.min(a.length, b.length)
    for (let i = 0; i < n; i++) a[i] = a[i]! & ~b[i]!
    return this
  }

  /** number of members */
  get size (): number {
    let n = 0
    for (let i = 0; i < this.words.length; i++) {
      let v = this.words[i]!
      v = v - ((v >>> 1) & 0x55555555)
      v = (v & 0x33333333) + ((v >>> 2) & 0x33333333)
      n += (((v + (v >>> 4)) & 0x0F0F0F0F) * 0x01010101) >>> 24
    }
    return n
  }

  /** the members, ascending */
  * [Symbol.iterator] (): Generator<number> {
    const w = this.words
    for (let i = 0; i < w.length; i++) {
      let v = w[i]!
      while (v !== 0) {
        const bit = 31 - Math.clz32(v & -v)
        yield i * 32 + bit
        v &= v - 1
      }
    }
  }
}
