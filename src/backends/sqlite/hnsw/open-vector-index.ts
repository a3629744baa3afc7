/**
 * An HNSW index kept in step with one SQLite vector table.
 *
 * On open: load `<dataDir>/<table>.hnsw` (checked against its sidecar), then replay what changed
 * since it was written: rows with `seq` above the snapshot's `seq` are (re)inserted, labels no
 * longer in the table are removed. A missing, corrupt or outdated snapshot is rebuilt from the
 * embeddings in SQLite, with a warning. Writes after open go through one queue, in commit order,
 * so "every row up to seq N is in the index" holds and a snapshot can record N.
 * A snapshot is taken every `checkpointEvery` changes and on close.
 */
import type { Logger } from 'pino'
import { setImmediate as yieldTick } from 'node:timers/promises'
import { HnswIndex, INSERT_SLICE_MS, MIN_CAPACITY, SnapshotError } from './hnsw-index.js'
import { exists, removeSnapshot, sidecarPath } from './snapshot-file.js'
import type { HnswParams, SearchResult, SnapshotInfo } from './vector-index.js'

export interface VectorRowRef { label: number, seq: number }
export interface VectorRow extends VectorRowRef { vector: Float32Array }

/** What the index needs from a SQLite vector table (src/backends/sqlite/store's VectorRows has this shape). */
export interface VectorSource {
  readonly dim: number
  /** label and seq of every row */
  labels (): VectorRowRef[]
  /** rows with seq > afterSeq, in seq order */
  vectorsAfter (afterSeq: number): Iterable<VectorRow>
  vectorsByLabel (labels: number[]): VectorRow[]
  count (): number
}

export interface OpenVectorIndexOptions extends Partial<HnswParams> {
  /** snapshot after this many inserts + deletes (default 1000) */
  checkpointEvery?: number
  /** the model whose vectors the index holds: recorded in the snapshot, and a snapshot of another model is rebuilt */
  modelId?: string
  logger?: Pick<Logger, 'info' | 'warn' | 'error'>
}

const REPLAY_BATCH = 1024
const silent = { info () {}, warn () {}, error () {} }

export class TableIndex {
  private queue: Promise<void> = Promise.resolve()
  /** every row with seq <= watermark is in the index */
  private watermark: number
  /** set when an insert failed: the watermark stops, so the next start replays from there */
  private frozen = false
  private readonly pending = new Set<number>()
  private readonly cancelled = new Set<number>()
  private changes = 0
  private checkpointQueued = false
  private closed = false
  private readonly checkpointEvery: number
  private readonly log: Pick<Logger, 'info' | 'warn' | 'error'>

  /** `changes`: replayed changes not yet in a snapshot */
  /** the model whose vectors these are (recorded in each snapshot) */
  modelId: string | undefined

  constructor (readonly name: string, public file: string, readonly index: HnswIndex, watermark: number, opts: OpenVectorIndexOptions, changes = 0) {
    this.watermark = watermark
    this.modelId = opts.modelId
    this.changes = changes
    this.checkpointEvery = Math.max(1, opts.checkpointEvery ?? 1000)
    this.log = opts.logger ?? silent
  }

  get size (): number { return this.index.size }
  get capacity (): number { return this.index.capacity }
  get params (): HnswParams { return this.index.params }
  /** the last row version the index is known to contain */
  get seq (): number { return this.watermark }

  has (label: number): boolean { return this.index.has(label) }

  /**
   * Points the index at another snapshot file (a model swap moved its rows to the other slot) and
   * snapshots it there. Until that snapshot is written, the file there holds the other model's
   * index, which the next start rebuilds from SQLite because its recorded model differs.
   */
  async moveTo (file: string): Promise<void> {
    this.file = file
    this.changes++
    await this.checkpoint().catch(() => {})
  }

  /**
   * Queues rows just committed to SQLite; resolves once they are searchable. Call it right
   * after the commit, in the same tick, so the queue order is the commit (seq) order.
   */
  append (rows: VectorRow[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`${this.name} index is closed`))
    for (const r of rows) this.pending.add(r.seq)
    const job = this.queue.then(async () => {
      const live = rows.filter((r) => !this.cancelled.has(r.seq) && !isZero(r.vector))
      try {
        await this.index.add(live.map((r) => r.label), live.map((r) => r.vector))
      } catch (err) {
        this.frozen = true
        this.log.error({ err, index: this.name }, 'inserting into the vector index failed; it will be replayed from SQLite on the next start')
        throw err
      } finally {
        for (const r of rows) { this.pending.delete(r.seq); this.cancelled.delete(r.seq) }
      }
      const last = rows[rows.length - 1]
      if (!this.frozen && last !== undefined && last.seq > this.watermark) this.watermark = last.seq
      this.changed(live.length)
    })
    this.queue = job.catch(() => {})
    return job
  }

  /** Removes a row synchronously: it is never returned by a search after this call. */
  remove (ref: VectorRowRef): void {
    if (this.pending.has(ref.seq)) this.cancelled.add(ref.seq)
    else this.index.remove(ref.label)
    this.changed(1)
  }

  search (query: Float32Array, k: number, filter?: (label: number) => boolean): SearchResult[] {
    return this.index.search(query, k, filter)
  }

  /** ≈ cosine of a unit query with the live vector at `label` (HnswIndex.approxCosine) */
  approxCosine (unitQuery: Float32Array, label: number): number {
    return this.index.approxCosine(unitQuery, label)
  }

  private changed (n: number): void {
    this.changes += n
    if (this.changes >= this.checkpointEvery && !this.checkpointQueued && !this.closed) {
      this.checkpoint().catch(() => {})
    }
  }

  /** Queues a snapshot after the inserts already queued; resolves when it is on disk. */
  checkpoint (): Promise<void> {
    this.checkpointQueued = true
    const job = this.queue.then(async () => {
      this.checkpointQueued = false
      const counted = this.changes
      try {
        const info = await this.index.snapshot(this.file, { seq: this.watermark, table: this.name, ...(this.modelId === undefined ? {} : { modelId: this.modelId }) })
        this.changes -= counted
        this.log.info({ index: this.name, count: info.count, seq: this.watermark, bytes: info.bytes }, 'index snapshot written')
      } catch (err) {
        this.log.error({ err, index: this.name }, 'index snapshot failed; SQLite still has everything, the next start replays it')
        throw err
      }
    })
    this.queue = job.catch(() => {})
    return job
  }

  /**
   * Queues a snapshot into another file (a backup): it runs after the inserts already queued and
   * before any queued later, so called in the same tick as a read transaction begins, it holds
   * exactly the rows that transaction sees. It is not a checkpoint: DATA_DIR's own snapshot is untouched.
   */
  snapshotTo (file: string): Promise<SnapshotInfo> {
    if (this.closed) return Promise.reject(new Error(`${this.name} index is closed`))
    const job = this.queue.then(async () => await this.index.snapshot(file, { seq: this.watermark, table: this.name }))
    this.queue = job.then(() => {}, () => {})
    return job
  }

  /** Waits for queued inserts, writes a final snapshot when anything changed, and refuses further writes. */
  async close (): Promise<void> {
    if (this.closed) return
    await this.queue
    if (this.changes > 0 || !(await exists(this.file))) await this.checkpoint().catch(() => {})
    this.closed = true
    await this.queue
  }
}

/**
 * Opens the index of `table` at `file` (e.g. `DATA_DIR/images.hnsw`): loads and replays the
 * snapshot, or rebuilds it from SQLite. See the module comment.
 */
export async function openVectorIndex<T extends string> (
  store: { table: (name: T) => VectorSource },
  table: T,
  file: string,
  opts: OpenVectorIndexOptions = {}
): Promise<TableIndex> {
  const log = opts.logger ?? silent
  const source = store.table(table)
  let loaded: { index: HnswIndex, seq: number } | undefined
  if (await exists(file)) {
    try {
      const { index, info } = await HnswIndex.load(file, source.dim, opts)
      const seq = typeof info.meta.seq === 'number' ? info.meta.seq : Number.NaN
      if (!Number.isFinite(seq)) throw new SnapshotError('sidecar has no seq')
      if (opts.modelId !== undefined && typeof info.meta.modelId === 'string' && info.meta.modelId !== opts.modelId) throw new SnapshotError(`snapshot holds vectors of model ${info.meta.modelId}`)
      if ((opts.M !== undefined && opts.M !== info.M) || (opts.efConstruction !== undefined && opts.efConstruction !== info.efConstruction)) {
        log.info({ index: table, snapshot: { M: info.M, efConstruction: info.efConstruction }, configured: { M: opts.M, efConstruction: opts.efConstruction } },
          'HNSW parameters changed: rebuilding the index from SQLite')
      } else {
        loaded = { index, seq }
      }
    } catch (err) {
      if (!(err instanceof SnapshotError)) throw err
      log.warn({ index: table, file, reason: err.message }, 'index snapshot unusable: rebuilding from SQLite')
    }
  } else if (await exists(sidecarPath(file))) {
    log.warn({ index: table, file }, 'index snapshot missing: rebuilding from SQLite')
  }

  if (loaded === undefined) {
    await removeSnapshot(file)
    const started = Date.now()
    const index = HnswIndex.create(source.dim, { ...opts, capacity: Math.max(MIN_CAPACITY, Math.ceil(source.count() * 1.25)) })
    const { maxSeq } = await insertAll(index, source.vectorsAfter(-1))
    const t = new TableIndex(table, file, index, maxSeq, opts)
    if (index.size > 0) {
      log.info({ index: table, count: index.size, ms: Date.now() - started }, 'index rebuilt from SQLite')
      t.checkpoint().catch(() => {})
    }
    return t
  }

  const { index, seq } = loaded
  const rows = source.labels()
  const inTable = new Set<number>()
  let maxSeq = seq
  const missing: number[] = []
  for (const r of rows) {
    inTable.add(r.label)
    if (r.seq > maxSeq) maxSeq = r.seq
    if (r.seq <= seq && !index.has(r.label)) missing.push(r.label)
  }
  // rows left out of this model (an all-zero vector, see ModelSlots.putStandby) are never in the index
  if (missing.length > 0) {
    const zero = new Set(source.vectorsByLabel(missing).filter((r) => isZero(r.vector)).map((r) => r.label))
    missing.splice(0, missing.length, ...missing.filter((l) => !zero.has(l)))
  }
  let removed = 0
  for (const l of index.labels()) if (!inTable.has(l) && index.remove(l)) removed++
  const replayed = (await insertAll(index, source.vectorsAfter(seq))).count
  if (missing.length > 0) {
    log.warn({ index: table, count: missing.length }, 'snapshot lacked rows it should hold: re-inserting them')
    const back = source.vectorsByLabel(missing)
    await index.add(back.map((r) => r.label), back.map((r) => r.vector))
  }
  const changed = removed + replayed + missing.length
  if (changed > 0) log.info({ index: table, removed, replayed, missing: missing.length, seq: maxSeq }, 'index snapshot replayed')
  const t = new TableIndex(table, file, index, maxSeq, opts, changed)
  if (changed >= (opts.checkpointEvery ?? 1000)) t.checkpoint().catch(() => {})
  // the snapshot holds no int8 copy: made from SQLite before the index serves, so filtered searches
  // are as fast from the first one (in the background, the 100k bench's first 200 filtered searches
  // ran at 2-10x their cost, reading the vectors not copied yet)
  const copyStarted = Date.now()
  await copyCodes(index, source)
  if (index.size > 0) log.info({ index: table, count: index.size, ms: Date.now() - copyStarted }, 'int8 copy of the vectors made for filtered search')
  return t
}

/**
 * Gives every live vector of a loaded snapshot its int8 copy, from SQLite's float vectors a page at a
 * time, yielding to the event loop every INSERT_SLICE_MS (other backends' opens, probes). A label
 * written meanwhile has its copy already (add makes it) and is skipped, so no older vector
 * overwrites a newer one.
 */
async function copyCodes (index: HnswIndex, source: VectorSource): Promise<void> {
  let sliceEnd = performance.now() + INSERT_SLICE_MS
  for (const r of source.vectorsAfter(-1)) {
    if (index.has(r.label) && !index.hasCode(r.label)) index.setCode(r.label, r.vector)
    if (performance.now() > sliceEnd) {
      await yieldTick()
      sliceEnd = performance.now() + INSERT_SLICE_MS
    }
  }
}

/** Streams rows into the index in batches; returns how many and the largest seq seen (-1 when none). */
async function insertAll (index: HnswIndex, rows: Iterable<VectorRow>): Promise<{ count: number, maxSeq: number }> {
  let maxSeq = -1
  let count = 0
  let labels: number[] = []
  let vectors: Float32Array[] = []
  for (const r of rows) {
    if (r.seq > maxSeq) maxSeq = r.seq
    if (isZero(r.vector)) continue
    labels.push(r.label)
    vectors.push(r.vector)
    count++
    if (labels.length === REPLAY_BATCH) {
      await index.add(labels, vectors)
      labels = []
      vectors = []
    }
  }
  if (labels.length > 0) await index.add(labels, vectors)
  return { count, maxSeq }
}

/** an all-zero vector: a row left out of this model, which has no direction to index */
function isZero (v: Float32Array): boolean {
  for (let i = 0; i < v.length; i++) if (v[i] !== 0) return false
  return true
}
