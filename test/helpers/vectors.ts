/**
 * Embedding-like test data: unit vectors scattered around a few cluster centres (uniform random
 * vectors would make every HNSW look bad), generated from a seed so every backend gets the same
 * rows. Each row is a function of (seed, index) alone, so `extra(n)` and `texts(n)` never shift.
 */
import { createHash } from 'node:crypto'
import type { NewImage, NewText } from '../../src/backends/ports.js'

export const DIM = 16

/** a deterministic stream of numbers in [0, 1) from a string key (sha256 as the mixer) */
function randoms (key: string): () => number {
  let counter = 0
  let block = Buffer.alloc(0)
  let at = 0
  return () => {
    if (at + 4 > block.length) {
      block = createHash('sha256').update(`${key}/${counter++}`).digest()
      at = 0
    }
    const x = block.readUInt32LE(at) / 2 ** 32
    at += 4
    return x
  }
}

function gaussian (rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand())
}

export function unit (v: Float32Array): Float32Array {
  let n = 0
  for (const x of v) n += x * x
  const s = 1 / Math.sqrt(n)
  return v.map((x) => x * s)
}

export function cosine (a: Float32Array, b: Float32Array): number {
  let dot = 0
  let na = 0
  let nb = 0
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!
    na += a[i]! * a[i]!
    nb += b[i]! * b[i]!
  }
  return dot / Math.sqrt(na * nb)
}

/** the k rows nearest to `q` by cosine, best first (brute force: the ground truth) */
export function exactNearest<T extends { embedding: Float32Array }> (rows: T[], q: Float32Array, k: number): T[] {
  return rows.map((r) => ({ r, s: cosine(r.embedding, q) })).sort((a, b) => b.s - a.s).slice(0, k).map((x) => x.r)
}

export type PoolImage = NewImage & { id: string }

export class Pool {
  readonly rows: PoolImage[]
  readonly byId: Map<string, PoolImage>
  private readonly centres: Float32Array[]
  private readonly gone = new Set<string>()

  /** `n` images around `clusters` centres; 1 in 50 has metadata group "rare" */
  constructor (n: number, private readonly clusters: number, private readonly seed: number, private readonly dim = DIM) {
    this.centres = Array.from({ length: clusters }, (_, c) => this.noisy(`centre-${c}`, new Float32Array(dim), 1))
    this.rows = Array.from({ length: n }, (_, i) => this.image(`img-${i}`, i))
    this.byId = new Map(this.rows.map((r) => [r.id, r]))
  }

  /** a vector near `centre` (noise: the spread per coordinate) */
  private noisy (key: string, centre: Float32Array, noise: number): Float32Array {
    const rand = randoms(`${this.seed}/${key}`)
    return unit(centre.map((x) => x + noise * gaussian(rand)))
  }

  private image (id: string, i: number): PoolImage {
    const rand = randoms(`${this.seed}/meta-${id}`)
    const cluster = Math.floor(rand() * this.clusters)
    return {
      id,
      sha256: createHash('sha256').update(`${this.seed}/${id}`).digest('hex'),
      width: 64 + (i % 7),
      height: 48 + (i % 5),
      metadata: { group: i % 50 === 0 ? 'rare' : 'common', cluster, i },
      embedding: this.noisy(id, this.centres[cluster]!, 0.25),
      thumbnail: null
    }
  }

  /** an image that is not in the pool (new content) */
  extra (n: number): PoolImage {
    return this.image(`extra-${n}`, 100_000 + n)
  }

  /** `n` texts (always the same first ones), half "odd" */
  texts (n: number): Array<NewText & { id: string }> {
    return Array.from({ length: n }, (_, i) => ({
      id: `text-${i}`,
      text: `a caption number ${i}`,
      sha256: createHash('sha256').update(`${this.seed}/text-${i}`).digest('hex'),
      metadata: { parity: i % 2 === 1 ? 'odd' : 'even' },
      embedding: this.noisy(`text-${i}`, this.centres[i % this.clusters]!, 0.25)
    }))
  }

  /** a query near cluster `c`'s centre */
  query (c: number): Float32Array {
    return this.noisy(`query-${c}`, this.centres[c % this.clusters]!, 0.2)
  }

  removed (ids: string[]): void {
    for (const id of ids) this.gone.add(id)
  }

  /** the pool's rows still stored */
  live (): PoolImage[] {
    return this.rows.filter((r) => !this.gone.has(r.id))
  }
}
