/**
 * The embedded engine's index on metadata, in memory beside the HNSW index: it answers which labels
 * a filter matches, exactly, without reading SQLite, so the planner knows the count before it picks
 * a path and the HNSW walk checks the filter with a bitmap lookup.
 *
 * - per key, the labels that have it ($exists) as a bitmap;
 * - per key and scalar value, the labels holding it (an inverted index: $eq, $in, $ne, $nin);
 * - per key, a sorted column of the numbers, and one of the ISO-8601 instants ($gt… ranges).
 *
 * Built from SQLite at open, kept in step on add and delete (the caller passes the row's metadata).
 * A column sorts lazily: adds go to a small unsorted tail that each range query also scans, and the
 * column is re-sorted once the tail (or the deleted entries it skips) grows past a fraction of it.
 */
import { parseInstant } from '../../../core/iso-instant.js'
import type { CompareOp, FilterNode, FilterScalar } from '../../../core/metadata-filter.js'
import { LabelSet } from './label-set.js'

function token (v: FilterScalar): string {
  return `${typeof v}:${String(v)}`
}

function isScalar (v: unknown): v is FilterScalar {
  return typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))
}

/** One key's numbers (or instants), sorted for range queries. */
class SortedColumn {
  /** label → its current value: the truth, which sorted entries are checked against */
  private readonly current = new Map<number, number>()
  private values = new Float64Array(0)
  private labels = new Int32Array(0)
  /** labels set since the last sort */
  private tail: number[] = []
  /** sorted entries whose label was deleted since */
  private stale = 0

  get size (): number { return this.current.size }

  set (label: number, value: number): void {
    this.current.set(label, value)
    this.tail.push(label)
  }

  delete (label: number): void {
    if (this.current.delete(label)) this.stale++
  }

  private sort (): void {
    const labels = Int32Array.from(this.current.keys())
    const current = this.current
    labels.sort((a, b) => current.get(a)! - current.get(b)!)
    this.labels = labels
    this.values = Float64Array.from(labels, (l) => current.get(l)!)
    this.tail = []
    this.stale = 0
  }

  /** first index whose value is > v (or ≥ v when `inclusive`) */
  private lowerBound (v: number, inclusive: boolean): number {
    let lo = 0; let hi = this.values.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const x = this.values[mid]!
      if (inclusive ? x < v : x <= v) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** the index range [from, to) of the sorted entries that compare to `v` as `op` says */
  private span (op: CompareOp, v: number): [number, number] {
    switch (op) {
      case 'gt': return [this.lowerBound(v, false), this.values.length]
      case 'gte': return [this.lowerBound(v, true), this.values.length]
      case 'lt': return [0, this.lowerBound(v, true)]
      case 'lte': return [0, this.lowerBound(v, false)]
    }
  }

  /** adds to `out` every label whose value compares to `v` as `op` says */
  select (op: CompareOp, v: number, out: LabelSet): void {
    const n = this.values.length
    if (this.tail.length > 1024 + n / 8 || this.stale > 1024 + n / 4) this.sort()
    const [from, to] = this.span(op, v)
    for (let i = from; i < to; i++) {
      const l = this.labels[i]!
      if (this.current.get(l) === this.values[i]) out.add(l)
    }
    for (const l of this.tail) {
      const x = this.current.get(l)
      if (x !== undefined && (op === 'gt' ? x > v : op === 'gte' ? x >= v : op === 'lt' ? x < v : x <= v)) out.add(l)
    }
  }
}

export class MetadataIndex {
  /** every indexed label */
  private readonly all = new LabelSet()
  private readonly keys = new Map<string, LabelSet>()
  private readonly postings = new Map<string, Map<string, Set<number>>>()
  private readonly numbers = new Map<string, SortedColumn>()
  private readonly instants = new Map<string, SortedColumn>()
  private count = 0

  /** number of labels indexed */
  get size (): number { return this.count }

  /** Indexes the row at `label`; a label already indexed must be deleted first (labels are reused). */
  add (label: number, metadata: Record<string, unknown>): void {
    if (this.all.has(label)) throw new Error(`label ${label} is already in the metadata index`)
    this.all.add(label)
    this.count++
    for (const [key, v] of Object.entries(metadata)) {
      let has = this.keys.get(key)
      if (has === undefined) this.keys.set(key, has = new LabelSet())
      has.add(label)
      if (!isScalar(v)) continue
      let byValue = this.postings.get(key)
      if (byValue === undefined) this.postings.set(key, byValue = new Map())
      const t = token(v)
      let set = byValue.get(t)
      if (set === undefined) byValue.set(t, set = new Set())
      set.add(label)
      if (typeof v === 'number') column(this.numbers, key).set(label, v)
      else if (typeof v === 'string') {
        const ms = parseInstant(v)
        if (ms !== undefined) column(this.instants, key).set(label, ms)
      }
    }
  }

  /** Drops the row at `label`; `metadata` is what it was indexed with. */
  delete (label: number, metadata: Record<string, unknown>): void {
    if (!this.all.has(label)) return
    this.all.delete(label)
    this.count--
    for (const [key, v] of Object.entries(metadata)) {
      this.keys.get(key)?.delete(label)
      if (!isScalar(v)) continue
      const byValue = this.postings.get(key)
      const t = token(v)
      const set = byValue?.get(t)
      if (set !== undefined) {
        set.delete(label)
        if (set.size === 0) byValue!.delete(t)
      }
      this.numbers.get(key)?.delete(label)
      this.instants.get(key)?.delete(label)
    }
  }

  /** the labels `node` matches (a new set the caller may change) */
  select (node: FilterNode): LabelSet {
    switch (node.op) {
      case 'and': {
        const [first, ...rest] = node.of.map((n) => this.select(n))
        for (const s of rest) first!.and(s)
        return first!
      }
      case 'or': {
        const [first, ...rest] = node.of.map((n) => this.select(n))
        for (const s of rest) first!.or(s)
        return first!
      }
      case 'exists': {
        const has = this.keys.get(node.key)
        if (node.exists) return has?.clone() ?? new LabelSet()
        const out = this.all.clone()
        return has === undefined ? out : out.andNot(has)
      }
      case 'eq': case 'in': case 'ne': case 'nin': {
        const byValue = this.postings.get(node.key)
        const out = new LabelSet(this.all.capacity)
        for (const v of 'values' in node ? node.values : [node.value]) {
          for (const l of byValue?.get(token(v)) ?? []) out.add(l)
        }
        return node.op === 'eq' || node.op === 'in' ? out : this.all.clone().andNot(out)
      }
      default: {
        const out = new LabelSet(this.all.capacity)
        ;(node.kind === 'number' ? this.numbers : this.instants).get(node.key)?.select(node.op, node.value, out)
        return out
      }
    }
  }

  /** every indexed label (a new set) */
  everything (): LabelSet {
    return this.all.clone()
  }
}

function column (columns: Map<string, SortedColumn>, key: string): SortedColumn {
  let c = columns.get(key)
  if (c === undefined) columns.set(key, c = new SortedColumn())
  return c
}
