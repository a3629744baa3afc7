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
import { groupRanges, rangeOf, type KeyRange } from '../../../core/filter-ranges.js'
import type { FilterNode, FilterScalar } from '../../../core/metadata-filter.js'
import { LabelSet } from './label-set.js'

function token (v: FilterScalar): string {
  return `${typeof v}:${String(v)}`
}

function isScalar (v: unknown): v is FilterScalar {
  return typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))
}

/** One key's numbers (or instants), sorted for range queries. */
class SortedColumn {
  /** label → its current value (NaN: none): the truth, which sorted entries are checked against; a typed array, as a Map lookup per entry cost more than the range scan itself */
  private current = new Float64Array(0)
  private count = 0
  private values = new Float64Array(0)
  private labels = new Int32Array(0)
  /** labels set since the last sort */
  private tail: number[] = []
  /** sorted entries whose label was deleted since */
  private stale = 0

  get size (): number { return this.count }

  set (label: number, value: number): void {
    if (label >= this.current.length) {
      const grown = new Float64Array(Math.max(label + 1, this.current.length * 2, 1024)).fill(Number.NaN)
      grown.set(this.current)
      this.current = grown
    }
    if (Number.isNaN(this.current[label]!)) this.count++
    this.current[label] = value
    this.tail.push(label)
  }

  delete (label: number): void {
    if (label < this.current.length && !Number.isNaN(this.current[label]!)) {
      this.current[label] = Number.NaN
      this.count--
      this.stale++
    }
  }

  private sort (): void {
    const current = this.current
    const labels = new Int32Array(this.count)
    let j = 0
    for (let l = 0; l < current.length; l++) if (!Number.isNaN(current[l]!)) labels[j++] = l
    labels.sort((a, b) => current[a]! - current[b]!)
    this.labels = labels
    this.values = Float64Array.from(labels, (l) => current[l]!)
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

  /** adds to `out` every label whose value lies in `range`: a binary search for each end, then only the entries between */
  select (range: KeyRange, out: LabelSet): void {
    const n = this.values.length
    if (this.tail.length > 1024 + n / 8 || this.stale > 1024 + n / 4) this.sort()
    const { lower, upper } = range
    const from = lower === undefined ? 0 : this.lowerBound(lower.value, lower.inclusive)
    const to = upper === undefined ? this.values.length : this.lowerBound(upper.value, !upper.inclusive)
    const current = this.current
    for (let i = from; i < to; i++) {
      const l = this.labels[i]!
      if (current[l] === this.values[i]) out.add(l)
    }
    for (const l of this.tail) {
      const x = current[l]!
      if (!Number.isNaN(x) && inRange(x, range)) out.add(l)
    }
  }
}

function inRange (x: number, { lower, upper }: KeyRange): boolean {
  return (lower === undefined || (lower.inclusive ? x >= lower.value : x > lower.value)) &&
    (upper === undefined || (upper.inclusive ? x <= upper.value : x < upper.value))
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
        // the comparisons on one key as one interval: a range scan of the matches, not of two half-lines
        const { ranges, rest: others } = groupRanges(node.of)
        const [first, ...rest] = [...ranges.map((r) => this.selectRange(r)), ...others.map((n) => this.select(n))]
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
      default: return this.selectRange(rangeOf(node))
    }
  }

  private selectRange (range: KeyRange): LabelSet {
    const out = new LabelSet(this.all.capacity)
    ;(range.kind === 'number' ? this.numbers : this.instants).get(range.key)?.select(range, out)
    return out
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
