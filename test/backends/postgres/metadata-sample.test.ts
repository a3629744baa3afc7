/**
 * The metadata sample's answers follow the sample it holds: what it remembers of a filter is
 * forgotten when a refresh brings other rows. No database: the pool answers the sample query.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type pg from 'pg'
import { MetadataSample, SAMPLE_ROWS } from '../../../src/backends/postgres/metadata-sample.js'
import { parseFilter } from '../../../src/core/metadata-filter.js'

/** a pool whose every query answers `rows` as the sample's metadata */
const answering = (rows: Array<Record<string, unknown>>): pg.Pool => ({ query: async () => ({ rows: rows.map((metadata) => ({ metadata })) }) }) as unknown as pg.Pool

describe('MetadataSample', () => {
  it('answers from the sample it holds now, not from what an older sample said of the same filter', async () => {
    const sample = new MetadataSample('images')
    const filter = parseFilter({ album: 'holiday' })!
    const rows = (album: string): Array<Record<string, unknown>> => Array.from({ length: SAMPLE_ROWS }, () => ({ album }))
    assert.equal(sample.surelyMoreThan(filter, 10), false, 'no sample yet: never sure')
    await sample.refresh(answering(rows('holiday')), 100_000)
    assert.equal(sample.surelyMoreThan(filter, 10_000), true)
    assert.equal(sample.surelyMoreThan(filter, 10_000), true, 'asked again, the same answer')
    assert.equal(sample.surelyMoreThan(filter, 200_000), false, 'never more than the table holds')
    await sample.refresh(answering(rows('work')), 100_000)
    assert.equal(sample.surelyMoreThan(filter, 10_000), false, 'the new sample has no holiday rows')
  })
})
