/**
 * The indexes the ANN section compares, behind one small interface:
 * the project's HnswIndex (src/index, hnswlib-node inside) and usearch as a peer.
 * Both use the same M / connectivity, efConstruction / expansion_add and efSearch / expansion_search.
 */
import { stat } from 'node:fs/promises'
import { Index, MetricKind, ScalarKind } from 'usearch'
import { HnswIndex } from '../../src/backends/sqlite/hnsw/hnsw-index.js'
import { row } from './vectors.js'

export interface Candidate {
  readonly name: string
  /** inserts rows 0..n-1 with labels 0..n-1; single-threaded for both */
  build: (data: Float32Array, dim: number) => Promise<void>
  setEf: (ef: number) => Promise<void>
  /** labels of the k nearest, best first */
  search: (q: Float32Array, k: number) => ArrayLike<number>
  /** writes the index; returns the bytes on disk */
  save: (file: string) => Promise<number>
  /** replaces the in-memory index with the one in `file` */
  load: (file: string) => Promise<void>
}

export interface HnswSetup { M: number, efConstruction: number, seed: number }

/** src/index/hnsw-index.ts: add() in chunks with event-loop yields, snapshot() with fsync + SHA-256 sidecar. */
export function projectIndex (p: HnswSetup): Candidate {
  let index: HnswIndex | undefined
  let dim = 0
  const need = (): HnswIndex => { if (index === undefined) throw new Error('not built'); return index }
  return {
    name: 'project HnswIndex (hnswlib-node)',
    async build (data, d) {
      dim = d
      const n = data.length / d
      index = HnswIndex.create(d, { M: p.M, efConstruction: p.efConstruction, efSearch: 64, capacity: n, seed: p.seed })
      const labels = Array.from({ length: n }, (_, i) => i)
      const vectors = labels.map((i) => row(data, i, d))
      await index.add(labels, vectors)
    },
    async setEf (ef) {
      // HnswIndex has no setter: efSearch is read from `params` on every search (a setEfSearch() would be cleaner)
      need().params.efSearch = ef
    },
    search (q, k) {
      const res = need().search(q, k)
      const out = new Array<number>(res.length)
      for (let i = 0; i < res.length; i++) out[i] = res[i]!.label
      return out
    },
    async save (file) {
      const info = await need().snapshot(file)
      return info.bytes
    },
    async load (file) {
      const ef = need().params.efSearch
      index = undefined
      index = (await HnswIndex.load(file, dim, { efSearch: ef, M: p.M, efConstruction: p.efConstruction })).index
    }
  }
}

/** usearch (npm), f32, cosine. expansion_search is fixed at construction, so setEf reloads the saved file. */
export function usearchIndex (p: HnswSetup): Candidate {
  let index: Index | undefined
  let dim = 0
  let saved: string | undefined
  const make = (ef: number): Index => new Index({
    dimensions: dim,
    metric: MetricKind.Cos,
    quantization: ScalarKind.F32,
    connectivity: p.M,
    expansion_add: p.efConstruction,
    expansion_search: ef,
    multi: false
  })
  const need = (): Index => { if (index === undefined) throw new Error('not built'); return index }
  return {
    name: 'usearch',
    async build (data, d) {
      dim = d
      const n = data.length / d
      index = make(64)
      index.add(BigUint64Array.from({ length: n }, (_, i) => BigInt(i)), data, 1)
    },
    async setEf (ef) {
      if (saved === undefined) throw new Error('usearch: save() before setEf()')
      index = undefined
      index = make(ef)
      index.load(saved)
    },
    search (q, k) {
      const keys = need().search(q, k, 1).keys
      const out = new Array<number>(keys.length)
      for (let i = 0; i < keys.length; i++) out[i] = Number(keys[i]!)
      return out
    },
    async save (file) {
      need().save(file)
      saved = file
      return (await stat(file)).size
    },
    async load (file) {
      index = undefined
      index = make(64)
      index.load(file)
      saved = file
    }
  }
}
