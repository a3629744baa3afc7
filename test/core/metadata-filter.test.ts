/**
 * The filter language: every operator's meaning on hand-picked rows, ISO-8601 instants, and the 400
 * that names the bad part of a malformed filter in words.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { BadRequestError } from '../../src/core/errors.js'
import { parseInstant } from '../../src/core/iso-instant.js'
import { MAX_FILTER_DEPTH, matchesFilter, parseFilter } from '../../src/core/metadata-filter.js'

const rows: Array<Record<string, unknown>> = [
  /* 0 */ { album: 'x', year: 2019, taken: '2019-06-01T10:00:00Z', gps: true },
  /* 1 */ { album: 'y', year: 2021, taken: '2021-01-01', gps: false },
  /* 2 */ { album: 'x', year: '2021', taken: '2021-01-01T01:30+02:00' },
  /* 3 */ { album: ['x'], year: 2020.5, taken: 'last summer', gps: null },
  /* 4 */ {}
]

/** the indices of the rows `filter` matches */
function which (filter: unknown): number[] {
  const node = parseFilter(filter)
  return rows.flatMap((r, i) => node === undefined || matchesFilter(r, node) ? [i] : [])
}

describe('metadata filter: what each operator matches', () => {
  it('exact match and $eq: same JSON type and value; several keys all match', () => {
    assert.deepEqual(which({ album: 'x' }), [0, 2], 'an array holding "x" is not "x"')
    assert.deepEqual(which({ year: 2021 }), [1], 'the string "2021" is not the number 2021')
    assert.deepEqual(which({ year: { $eq: '2021' } }), [2])
    assert.deepEqual(which({ album: 'x', gps: true }), [0])
    assert.deepEqual(which({}), [0, 1, 2, 3, 4], 'an empty filter selects everything')
    assert.equal(parseFilter({}), undefined)
  })

  it('$ne and $nin also match rows without the key', () => {
    assert.deepEqual(which({ album: { $ne: 'x' } }), [1, 3, 4])
    assert.deepEqual(which({ year: { $nin: [2019, 2021] } }), [2, 3, 4])
  })

  it('$in: any of the values, type for type', () => {
    assert.deepEqual(which({ year: { $in: [2019, '2021'] } }), [0, 2])
    assert.deepEqual(which({ gps: { $in: [false] } }), [1])
  })

  it('$gt $gte $lt $lte on numbers compare numbers only', () => {
    assert.deepEqual(which({ year: { $gt: 2019 } }), [1, 3], 'the string "2021" is no number')
    assert.deepEqual(which({ year: { $gte: 2019, $lt: 2021 } }), [0, 3])
    assert.deepEqual(which({ year: { $lte: 2020.5 } }), [0, 3])
  })

  it('... and on ISO-8601 strings as UTC instants (no offset = UTC); other strings never match', () => {
    // row 2 is 2020-12-31T23:30Z, row 1 is 2021-01-01T00:00Z
    assert.deepEqual(which({ taken: { $gte: '2021-01-01' } }), [1])
    assert.deepEqual(which({ taken: { $lt: '2021-01-01T00:00:00Z' } }), [0, 2])
    assert.deepEqual(which({ taken: { $gt: '2019-06-01T12:00+02:00' } }), [1, 2], '10:00Z is not after 10:00Z')
    assert.deepEqual(which({ year: { $gt: '2000-01-01' } }), [], 'a year stored as a number is no date')
  })

  it('$exists: the key is present, whatever its value (null included)', () => {
    assert.deepEqual(which({ gps: { $exists: true } }), [0, 1, 3])
    assert.deepEqual(which({ gps: { $exists: false } }), [2, 4])
  })

  it('$and and $or nest', () => {
    assert.deepEqual(which({ $or: [{ album: 'y' }, { year: { $lt: 2020 } }] }), [0, 1])
    assert.deepEqual(which({ $and: [{ $or: [{ album: 'x' }, { album: 'y' }] }, { gps: { $exists: true } }] }), [0, 1])
    assert.deepEqual(which({ album: 'x', $or: [{ gps: true }, { year: '2021' }] }), [0, 2])
  })
})

describe('ISO-8601 instants', () => {
  it('reads dates, times, fractions and offsets; refuses impossible dates and other forms', () => {
    assert.equal(parseInstant('1970-01-01'), 0)
    assert.equal(parseInstant('2020-02-29T12:00:00.5Z'), Date.UTC(2020, 1, 29, 12, 0, 0, 500))
    assert.equal(parseInstant('2020-01-01T01:00+01:00'), Date.UTC(2020, 0, 1))
    assert.equal(parseInstant('0001-01-01'), -62135596800000)
    for (const bad of ['2019-02-29', '2020-13-01', '2020-01-01T24:00', '2020-01-01T10:00:60', '2020-1-1', '20200101', '2020-01-01 10:00', '0000-01-01', '2020-01-01T10:00:00.1234Z', 'x']) {
      assert.equal(parseInstant(bad), undefined, bad)
    }
  })
})

describe('a malformed filter answers 400 naming the bad part in words', () => {
  const cases: Array<[unknown, RegExp]> = [
    [[], /^filter must be an object .*got an array/],
    ['album', /^filter must be an object .*got a string/],
    [{ album: ['x'] }, /^filter\.album must be a string, a finite number, a boolean or an object of operators .*got an array/],
    [{ album: null }, /^filter\.album .*got null/],
    [{ album: {} }, /^filter\.album is an empty object/],
    [{ album: { $regex: 'x' } }, /^filter\.album\.\$regex: unknown operator "\$regex"; use one of \$eq, \$ne/],
    [{ album: { $eq: { a: 1 } } }, /^filter\.album\.\$eq must be a string, a finite number or a boolean, got an object/],
    [{ year: { $in: [] } }, /^filter\.year\.\$in must be a non-empty array .*got an empty array/],
    [{ year: { $nin: 3 } }, /^filter\.year\.\$nin must be a non-empty array .*got a number/],
    [{ year: { $in: [1, [2]] } }, /^filter\.year\.\$in\[1\] must be a string, a finite number or a boolean, got an array/],
    [{ year: { $gt: true } }, /^filter\.year\.\$gt must be a number or an ISO-8601 date string, got a boolean/],
    [{ year: { $lt: 'yesterday' } }, /^filter\.year\.\$lt must be a number or an ISO-8601 date string .*got "yesterday"/],
    [{ year: { $gte: '2019-02-29' } }, /ISO-8601/],
    [{ gps: { $exists: 1 } }, /^filter\.gps\.\$exists must be true or false, got a number/],
    [{ $or: [] }, /^filter\.\$or must be a non-empty array of filters, got an empty array/],
    [{ $and: { a: 1 } }, /^filter\.\$and must be a non-empty array of filters, got an object/],
    [{ $or: [{ a: 1 }, 'b'] }, /^filter\.\$or\[1\] must be an object/],
    [{ $not: { a: 1 } }, /^filter\.\$not: unknown operator \$not at the top of a filter/],
    [{ '': 1 }, /^filter has an empty key/],
    [{ a: { $in: Array.from({ length: 300 }, (_, i) => i) } }, /has 300 values; at most 256/]
  ]
  for (const [filter, message] of cases) {
    it(JSON.stringify(filter).slice(0, 80), () => {
      assert.throws(() => parseFilter(filter), (err: Error) => err instanceof BadRequestError && (err as unknown as { statusCode: number }).statusCode === 400 && message.test(err.message))
    })
  }

  it(`$and / $or nest at most ${MAX_FILTER_DEPTH} levels`, () => {
    let ok: unknown = { a: 1 }
    for (let i = 1; i < MAX_FILTER_DEPTH; i++) ok = { $or: [ok] }
    assert.ok(parseFilter(ok) !== undefined)
    assert.throws(() => parseFilter({ $and: [ok] }), /nest at most 4 levels deep/)
  })
})
