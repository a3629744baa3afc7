/**
 * The comparisons of one $and on one key, merged into one interval (src/core/filter-ranges.ts), match
 * exactly the values that every comparison matches: equal bounds, inclusive against exclusive,
 * numbers and instants apart.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { groupRanges, type KeyRange } from '../../src/core/filter-ranges.js'
import { matchesFilter, parseFilter, type FilterNode } from '../../src/core/metadata-filter.js'

function inRange (x: number, { lower, upper }: KeyRange): boolean {
  return (lower === undefined || (lower.inclusive ? x >= lower.value : x > lower.value)) &&
    (upper === undefined || (upper.inclusive ? x <= upper.value : x < upper.value))
}

describe('groupRanges', () => {
  it('one interval per key and kind, matching what all the comparisons match', () => {
    const ops = ['$gt', '$gte', '$lt', '$lte'] as const
    let seed = 3
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return Math.floor(seed / 2 ** 31 * n) }
    for (let trial = 0; trial < 500; trial++) {
      const terms = Array.from({ length: 1 + rand(4) }, () => ({ n: { [ops[rand(4)]!]: rand(6) } }))
      const node = parseFilter({ $and: terms })!
      const of = node.op === 'and' ? node.of : [node]
      const flat = of.flatMap((n: FilterNode) => n.op === 'and' ? n.of : [n])
      const { ranges, rest } = groupRanges(flat)
      assert.equal(ranges.length, 1)
      assert.equal(rest.length, 0)
      for (let x = -1; x <= 6; x += 0.5) {
        assert.equal(inRange(x, ranges[0]!), matchesFilter({ n: x }, node), `${JSON.stringify(terms)} at ${x}`)
      }
    }
  })

  it('keeps keys and kinds apart, and leaves other conditions alone', () => {
    const node = parseFilter({ a: { $gt: 1, $lt: 5 }, b: { $gte: '2020-01-01' }, c: 'x', $and: [{ a: { $lte: 4 } }, { b: { $lt: 3 } }] })!
    const flat = node.op === 'and' ? node.of.flatMap((n) => n.op === 'and' ? n.of : [n]) : [node]
    const { ranges, rest } = groupRanges(flat)
    assert.deepEqual(rest, [{ op: 'eq', key: 'c', value: 'x' }])
    assert.deepEqual(ranges.find((r) => r.key === 'a'), { key: 'a', kind: 'number', lower: { value: 1, inclusive: false }, upper: { value: 4, inclusive: true } })
    assert.deepEqual(ranges.find((r) => r.key === 'b' && r.kind === 'instant'), { key: 'b', kind: 'instant', lower: { value: Date.UTC(2020, 0, 1), inclusive: true } })
    assert.deepEqual(ranges.find((r) => r.key === 'b' && r.kind === 'number'), { key: 'b', kind: 'number', upper: { value: 3, inclusive: false } })
  })
})
