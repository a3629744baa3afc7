/**
 * The comparisons of one `$and` on the same key and kind, as one interval. `{"t": {"$gte": a, "$lt": b}}`
 * parses to two conditions; answered one by one, each is a half-open range that can match most of
 * the rows (an index reads them all, and the intersection is taken afterwards). As one interval, an
 * index reads only the rows inside it: the rows that match.
 */
import type { CompareOp, FilterNode } from './metadata-filter.js'

export interface Bound { value: number, inclusive: boolean }

/** the rows whose value at `key` (a number, or an ISO-8601 instant) lies between the bounds */
export interface KeyRange { key: string, kind: 'number' | 'instant', lower?: Bound, upper?: Bound }

type Compare = Extract<FilterNode, { op: CompareOp }>

function isCompare (n: FilterNode): n is Compare {
  return n.op === 'gt' || n.op === 'gte' || n.op === 'lt' || n.op === 'lte'
}

/** the tighter of two lower (`lower`) or upper bounds; at equal values the exclusive one */
function tighter (a: Bound | undefined, b: Bound, lower: boolean): Bound {
  if (a === undefined) return b
  if (a.value === b.value) return { value: a.value, inclusive: a.inclusive && b.inclusive }
  return (lower ? b.value > a.value : b.value < a.value) ? b : a
}

/**
 * Splits the terms of an `$and` into one KeyRange per (key, kind) that has comparisons, and the
 * other terms. A KeyRange matches exactly the rows that all its comparisons match.
 */
export function groupRanges (of: FilterNode[]): { ranges: KeyRange[], rest: FilterNode[] } {
  const ranges = new Map<string, KeyRange>()
  const rest: FilterNode[] = []
  for (const n of of) {
    if (!isCompare(n)) { rest.push(n); continue }
    const id = `${n.kind}:${n.key}`
    let r = ranges.get(id)
    if (r === undefined) ranges.set(id, r = { key: n.key, kind: n.kind })
    const bound = { value: n.value, inclusive: n.op === 'gte' || n.op === 'lte' }
    if (n.op === 'gt' || n.op === 'gte') r.lower = tighter(r.lower, bound, true)
    else r.upper = tighter(r.upper, bound, false)
  }
  return { ranges: [...ranges.values()], rest }
}

/** the KeyRange of one comparison */
export function rangeOf (n: Compare): KeyRange {
  return groupRanges([n]).ranges[0]!
}
