/**
 * VectorIndex over hnswlib-node (HNSW, cosine space).
 *
 * hnswlib-node's calls are synchronous native calls, so inserts run in slices of INSERT_SLICE_MS
 * with a `setImmediate` yield between slices: searches interleave with a bulk load.
 *
 * Deletes use `markDelete` (the vector stays in the graph, skipped by searches). Slots are
 * reused by label: adding a label that is marked deleted unmarks it and overwrites its vector
 * in place (`addPoint` on an existing label). The SQLite store hands out the smallest freed
 * label first, so new rows fill deleted slots before the index grows. hnswlib's own
 * `replaceDeleted` mode is not used: it gives a new label the slot of an arbitrary deleted
 * label, which would leave our label → row mapping pointing at a stranger.
 *
 * When full, the capacity doubles (`resizeIndex`).
 */
import { setImmediate as yieldTick } from 'node:timers/promises'
import { rename, rm } from 'node:fs/promises'
import path from 'node:path'
import hnswlib from 'hnswlib-node'
import { clampCosine } from '../../../core/vector-math.js'
import { Int8Codes } from './int8-codes.js'
import { fsyncDir, fsyncFile, hashFile, readSidecar, sidecarPath, tempPath, writeFileAtomic } from './snapshot-file.js'
import { DEFAULT_HNSW, type HnswParams, type SearchResult, type SnapshotInfo, type VectorIndex } from './vector-index.js'

const { HierarchicalNSW } = hnswlib
type Native = InstanceType<typeof HierarchicalNSW>

/**
 * Longest run of inserts in one event-loop turn, ms. One insert costs ~0.1 ms in a small index and
 * ~0.5 ms at 10k vectors on a busy 2-core machine (a CPU profile of the service benchmark), so a
 * fixed count of 256 held searches up for tens of ms; a time budget keeps the wait short at any size.
 */
export const INSERT_SLICE_MS = 2
/** with a filter, ef is multiplied by this (filtered-out nodes still cost a visit) */
export const FILTER_EF_FACTOR = 4
/** capacity of a new, empty index */
export const MIN_CAPACITY = 1024
const MAX_LABEL = 0xFFFF_FFFF

const ABSENT = 0
const LIVE = 1
const DELETED = 2

export interface HnswOptions extends Partial<HnswParams> {
  /** initial number of slots (default 1024); grows ×2 when full */
  capacity?: number
  /** random seed of the level generator (default 100) */
  seed?: number
}

/** Raised when a snapshot cannot be used (missing, corrupt, other dimension or parameters). */
export class SnapshotError extends Error {
  override name = 'SnapshotError'
}

export class HnswIndex implements VectorIndex {
  readonly params: HnswParams
  /** per label: ABSENT, LIVE or DELETED (grows with the largest label) */
  private state: Uint8Array
  private live = 0
  /** a snapshot write in progress: the native index must not be mutated until it settles */
  private writing: Promise<void> | null = null
  /** labels removed while a snapshot was being written, applied to the native index after it */
  private deferred = new Set<number>()
  private readonly addBuf: number[]
  private readonly queryBuf: number[]
  /** the vectors again, as int8, for scoring a filter's matches without a call into hnswlib per vector */
  private readonly codes: Int8Codes

  private constructor (private native: Native, readonly dim: number, params: HnswParams, state?: Uint8Array) {
    this.params = { ...params }
    this.state = state ?? new Uint8Array(MIN_CAPACITY)
    this.codes = new Int8Codes(dim, this.state.length)
    // hnswlib-node only takes plain arrays: reuse one per direction instead of allocating per call
    this.addBuf = new Array<number>(dim).fill(0)
    this.queryBuf = new Array<number>(dim).fill(0)
  }

  /** An empty index for `dim`-dimensional vectors. */
  static create (dim: number, opts: HnswOptions = {}): HnswIndex {
    if (!Number.isInteger(dim) || dim <= 0) throw new RangeError(`dim must be a positive integer, got ${dim}`)
    const params = paramsOf(opts)
    const native = new HierarchicalNSW('cosine', dim)
    native.initIndex({
      maxElements: Math.max(1, Math.floor(opts.capacity ?? MIN_CAPACITY)),
      m: params.M,
      efConstruction: params.efConstruction,
      randomSeed: opts.seed ?? 100,
      allowReplaceDeleted: false
    })
    native.setEf(params.efSearch)
    return new HnswIndex(native, dim, params)
  }

  /**
   * Loads a snapshot written by `snapshot`, after checking its sidecar (dimension, size, SHA-256).
   * Throws SnapshotError when it cannot be trusted; the caller then rebuilds from SQLite.
   */
  static async load (file: string, dim: number, opts: Partial<HnswParams> = {}): Promise<{ index: HnswIndex, info: SnapshotInfo }> {
    let info: SnapshotInfo
    try {
      info = await readSidecar(file)
    } catch (err) {
      throw new SnapshotError(`no usable sidecar ${sidecarPath(file)}: ${(err as Error).message}`)
    }
    if (info.dim !== dim) throw new SnapshotError(`snapshot has dim ${info.dim}, expected ${dim}`)
    let actual
    try {
      actual = await hashFile(file)
    } catch (err) {
      throw new SnapshotError(`cannot read ${file}: ${(err as Error).message}`)
    }
    if (actual.bytes !== info.bytes || actual.sha256 !== info.sha256) {
      throw new SnapshotError(`${file} does not match its sidecar (size ${actual.bytes} vs ${info.bytes}, or checksum): corrupt or half-written`)
    }
    const params = { ...paramsOf(opts), M: info.M, efConstruction: info.efConstruction }
    const native = new HierarchicalNSW('cosine', dim)
    try {
      await native.readIndex(file, false)
    } catch (err) {
      throw new SnapshotError(`hnswlib could not read ${file}: ${(err as Error).message}`)
    }
    native.setEf(params.efSearch)
    const ids = native.getIdsList()
    let maxLabel = MIN_CAPACITY - 1
    for (const l of ids) if (l > maxLabel) maxLabel = l
    const state = new Uint8Array(maxLabel + 1)
    for (const l of ids) state[l] = LIVE
    for (const l of info.deleted) {
      if (state[l] !== LIVE) throw new SnapshotError(`sidecar lists deleted label ${l} that is not in the index`)
      state[l] = DELETED
    }
    const index = new HnswIndex(native, dim, params, state)
    index.live = ids.length - info.deleted.length
    if (index.live !== info.count) throw new SnapshotError(`snapshot holds ${index.live} live vectors, sidecar says ${info.count}`)
    return { index, info }
  }

  get size (): number { return this.live }
  get capacity (): number { return this.native.getMaxElements() }

  has (label: number): boolean {
    return this.state[label] === LIVE
  }

  /** labels of all live vectors */
  labels (): number[] {
    const out: number[] = []
    for (let l = 0; l < this.state.length; l++) if (this.state[l] === LIVE) out.push(l)
    return out
  }

  async add (labels: number[], vectors: Float32Array[]): Promise<void> {
    if (labels.length !== vectors.length) throw new RangeError(`${labels.length} labels but ${vectors.length} vectors`)
    labels.forEach((l, i) => {
      if (!Number.isInteger(l) || l < 0 || l > MAX_LABEL) throw new RangeError(`label ${l} is not an integer in [0, 2^32)`)
      checkVector(vectors[i]!, this.dim, `vector ${i}`)
    })
    let i = 0
    while (i < labels.length) {
      if (i > 0) await yieldTick()
      while (this.writing !== null) await this.writing
      const sliceEnd = performance.now() + INSERT_SLICE_MS
      do {
        this.put(labels[i]!, vectors[i]!)
        i++
      } while (i < labels.length && performance.now() < sliceEnd)
    }
  }

  private put (label: number, v: Float32Array): void {
    const buf = this.addBuf
    for (let i = 0; i < buf.length; i++) buf[i] = v[i]!
    const st = this.state[label] ?? ABSENT
    if (st === ABSENT && this.native.getCurrentCount() >= this.native.getMaxElements()) {
      this.native.resizeIndex(Math.max(1, this.native.getMaxElements() * 2))
    }
    // on a LIVE label this updates the vector, on a DELETED one it also unmarks it (slot reuse)
    this.native.addPoint(buf, label)
    this.codes.set(label, v)
    if (label >= this.state.length) {
      const grown = new Uint8Array(Math.max(label + 1, this.state.length * 2))
      grown.set(this.state)
      this.state = grown
    }
    this.state[label] = LIVE
    if (st !== LIVE) this.live++
  }

  remove (label: number): boolean {
    if (this.state[label] !== LIVE) return false
    this.state[label] = DELETED
    this.live--
    if (this.writing !== null) this.deferred.add(label)
    else this.native.markDelete(label)
    return true
  }

  /**
   * ≈ the cosine of the unit vector `unitQuery` with the live vector at `label`, from its int8 copy
   * (within ~1e-3; re-score the best from the float vectors). A label loaded from a snapshot has no
   * copy until `setCode` gives it one; until then it is copied from hnswlib here (~34 µs a vector).
   */
  approxCosine (unitQuery: Float32Array, label: number): number {
    if (!this.codes.has(label)) this.codes.set(label, this.native.getPoint(label))
    return this.codes.dot(unitQuery, label)
  }

  /** whether the vector at `label` has its int8 copy (a snapshot's vectors have none until setCode) */
  hasCode (label: number): boolean { return this.codes.has(label) }

  /** Gives the live vector at `label` its int8 copy from `vector` (its stored float vector, read elsewhere). */
  setCode (label: number, vector: Float32Array): void {
    if (this.state[label] === LIVE) this.codes.set(label, vector)
  }

  search (query: Float32Array, k: number, filter?: (label: number) => boolean): SearchResult[] {
    checkVector(query, this.dim, 'query')
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, got ${k}`)
    const kk = Math.min(k, this.live)
    if (kk === 0) return []
    const q = this.queryBuf
    for (let i = 0; i < q.length; i++) q[i] = query[i]!
    const deferred = this.deferred
    let keep = filter
    if (deferred.size > 0) keep = filter === undefined ? (l) => !deferred.has(l) : (l) => !deferred.has(l) && filter(l)
    const base = Math.max(this.params.efSearch, kk)
    this.native.setEf(keep === undefined ? base : base * FILTER_EF_FACTOR)
    const res = keep === undefined ? this.native.searchKnn(q, kk) : this.native.searchKnn(q, kk, keep)
    const out: SearchResult[] = new Array(res.neighbors.length)
    for (let i = 0; i < res.neighbors.length; i++) out[i] = { label: res.neighbors[i]!, score: clampCosine(1 - res.distances[i]!) }
    return out
  }

  /**
   * Writes the index to `file` (and `file.json`, the sidecar) atomically. Inserts wait while the
   * file is written; removes are applied to the copy in memory at once and to the native index after.
   */
  async snapshot (file: string, meta: Record<string, unknown> = {}): Promise<SnapshotInfo> {
    while (this.writing !== null) await this.writing
    const deleted: number[] = []
    for (let l = 0; l < this.state.length; l++) if (this.state[l] === DELETED) deleted.push(l)
    const count = this.live
    const capacity = this.capacity
    const tmp = tempPath(file)
    const write = this.native.writeIndex(tmp)
    // `writing` never rejects: inserts waiting on it must not inherit a failed write
    this.writing = write.then(() => {}, () => {}).then(() => {
      for (const l of this.deferred) this.native.markDelete(l)
      this.deferred.clear()
      this.writing = null
    })
    try {
      await write
      await this.writing
      await fsyncFile(tmp)
      const { bytes, sha256 } = await hashFile(tmp)
      const info: SnapshotInfo = {
        format: 1,
        dim: this.dim,
        space: 'cosine',
        M: this.params.M,
        efConstruction: this.params.efConstruction,
        capacity,
        count,
        deleted,
        bytes,
        sha256,
        meta,
        writtenAt: new Date().toISOString()
      }
      await rename(tmp, file)
      await writeFileAtomic(sidecarPath(file), JSON.stringify(info))
      await fsyncDir(path.dirname(file))
      return info
    } catch (err) {
      await this.writing
      await rm(tmp, { force: true })
      throw err
    }
  }
}

function paramsOf (opts: Partial<HnswParams>): HnswParams {
  const p = { M: opts.M ?? DEFAULT_HNSW.M, efConstruction: opts.efConstruction ?? DEFAULT_HNSW.efConstruction, efSearch: opts.efSearch ?? DEFAULT_HNSW.efSearch }
  for (const [k, v] of Object.entries(p)) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`HNSW ${k} must be a positive integer, got ${v}`)
  }
  return p
}

function checkVector (v: Float32Array, dim: number, name: string): void {
  if (v.length !== dim) throw new RangeError(`${name} has ${v.length} dims, expected ${dim}`)
  for (let i = 0; i < v.length; i++) {
    if (!Number.isFinite(v[i]!)) throw new RangeError(`${name} has a non-finite value at ${i}`)
  }
}
