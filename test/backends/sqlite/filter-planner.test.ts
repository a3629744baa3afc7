/**
 * The embedded engine's filter planner: the in-memory metadata index knows exactly which rows match,
 * so few matches are scored exactly (on the index's int8 copy, the best again from SQLite), many walk the HNSW graph
 * checking a bitmap, and the index follows adds, deletes, reused labels and a restart.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { openSqliteBackend, type SqliteBackend } from '../../../src/backends/sqlite/open-sqlite-backend.js'
import { EXACT_FALLBACK_SHARE, EXACT_MAX_MATCHES, OVERSAMPLE, OVERSAMPLE_MAX, RESCORE } from '../../../src/backends/sqlite/sqlite-collection.js'
import { MetadataIndex } from '../../../src/backends/sqlite/filter/metadata-index.js'
import { parseFilter } from '../../../src/core/metadata-filter.js'
import { TIMEOUT } from '../../helpers/timeouts.js'
import { cosine, DIM, exactNearest, Pool, type PoolImage } from '../../helpers/vectors.js'

const identity = { modelId: 'planner-model', dim: DIM }
const byI = (lo: number, hi: number) => (r: PoolImage): boolean => (r.metadata.i as number) >= lo && (r.metadata.i as number) < hi

function recall (got: string[], want: string[]): number {
  const w = new Set(want)
  return got.filter((id) => w.has(id)).length / want.length
}

describe('SQLite filter planner', { timeout: TIMEOUT.server }, () => {
  const pool = new Pool(5000, 20, 13)
  let dir: string
  let backend: SqliteBackend
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'filter-planner-'))
    backend = await openSqliteBackend({ dataDir: dir }, identity)
    for (let i = 0; i < pool.rows.length; i += 1000) await backend.images.add(pool.rows.slice(i, i + 1000))
  })
  after(async () => {
    await backend?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('1% selectivity: k hits, the exact nearest, scoring the 50 matching vectors and no others', async () => {
    const q = pool.query(3)
    const before = { ...backend.images.paths }
    const hits = await backend.images.search(q, { k: 10, filter: { i: { $lt: 50 } } })
    assert.deepEqual(hits.map((h) => h.id), exactNearest(pool.rows.filter(byI(0, 50)), q, 10).map((r) => r.id))
    assert.equal(backend.images.paths.exact, before.exact + 1)
    assert.equal(backend.images.paths.scored, before.scored + 50, 'the exact path scores exactly the matches')
    assert.equal(backend.images.paths.rescored, before.rescored + RESCORE * 10, 'and reads the float vectors of its best 3 × k alone from SQLite')
    assert.equal(backend.images.paths.walk, before.walk)
    for (const h of hits) assert.ok(Math.abs(h.score - cosine(pool.byId.get(h.id)!.embedding, q)) < 1e-5, 'scored in float32')
  })

  it(`above the cutoff (${EXACT_MAX_MATCHES} by default) and with oversampling off it walks the graph with the filter as a bitmap, and keeps recall`, async () => {
    backend.images.exactMaxMatches = 100
    backend.images.oversampleMax = 0
    try {
      for (const [lo, hi] of [[0, 250], [0, 2500], [1000, 1500]] as const) {
        const q = pool.query(lo + hi)
        const before = { ...backend.images.paths }
        const filter = { i: { $gte: lo, $lt: hi } }
        const hits = await backend.images.search(q, { k: 10, filter })
        assert.equal(backend.images.paths.walk, before.walk + 1)
        assert.equal(backend.images.paths.scored, before.scored, 'no vector scored one by one')
        assert.equal(hits.length, 10)
        assert.ok(hits.every((h) => (h.metadata.i as number) >= lo && (h.metadata.i as number) < hi))
        const r = recall(hits.map((h) => h.id), exactNearest(pool.rows.filter(byI(lo, hi)), q, 10).map((x) => x.id))
        assert.ok(r >= 0.9, `${JSON.stringify(filter)}: recall ${r}`)
      }
    } finally {
      backend.images.exactMaxMatches = EXACT_MAX_MATCHES
      backend.images.oversampleMax = OVERSAMPLE_MAX
    }
  })

  it(`a broad filter: the plain walk over ${OVERSAMPLE} × k / selectivity candidates, kept by the bitmap; short of k it falls back to the filtered walk`, async () => {
    const lo = 1000
    const hi = 3500 // 50% of the pool: 50 candidates for k = 10, where the exact path would score 2,500 vectors
    const q = pool.query(7)
    let before = { ...backend.images.paths }
    const hits = await backend.images.search(q, { k: 10, filter: { i: { $gte: lo, $lt: hi } } })
    assert.equal(backend.images.paths.oversample, before.oversample + 1)
    assert.equal(backend.images.paths.oversampleThenWalk, before.oversampleThenWalk)
    assert.equal(backend.images.paths.walk, before.walk, 'no filtered walk')
    assert.equal(backend.images.paths.scored, before.scored, 'no vector scored one by one')
    assert.equal(hits.length, 10)
    const r = recall(hits.map((h) => h.id), exactNearest(pool.rows.filter(byI(lo, hi)), q, 10).map((x) => x.id))
    assert.ok(r >= 0.9, `recall ${r}`)
    // a filter that leaves out the query's 100 nearest rows: none of the oversampled candidates match
    const near = exactNearest(pool.rows, q, 100).map((x) => x.metadata.i as number)
    before = { ...backend.images.paths }
    const far = await backend.images.search(q, { k: 10, filter: { i: { $nin: near } } })
    assert.equal(backend.images.paths.oversample, before.oversample + 1)
    assert.equal(backend.images.paths.oversampleThenWalk, before.oversampleThenWalk + 1)
    assert.equal(backend.images.paths.walk, before.walk + 1)
    assert.equal(far.length, 10)
    const farTruth = exactNearest(pool.rows.filter((x) => !near.includes(x.metadata.i as number)), q, 10).map((x) => x.id)
    assert.ok(recall(far.map((h) => h.id), farTruth) >= 0.9)
  })

  it('an oversampled walk that comes back short of k is redone exactly where few enough rows match', async () => {
    const q = pool.query(11)
    // the 3 clusters (~15% of the rows) farthest from the query: its nearest candidates hold none of them
    const byCluster = new Map<number, number[]>()
    for (const r of pool.rows) byCluster.set(r.metadata.cluster as number, [...(byCluster.get(r.metadata.cluster as number) ?? []), cosine(r.embedding, q)])
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
    const clusters = [...byCluster].sort((a, b) => mean(a[1]) - mean(b[1])).slice(0, 3).map(([c]) => c)
    const far = pool.rows.filter((r) => clusters.includes(r.metadata.cluster as number))
    backend.images.exactFallbackShare = 0.2
    try {
      const before = { ...backend.images.paths }
      const hits = await backend.images.search(q, { k: 10, filter: { cluster: { $in: clusters } } })
      assert.equal(backend.images.paths.oversampleThenWalk, before.oversampleThenWalk + 1)
      assert.equal(backend.images.paths.exact, before.exact + 1, 'redone exactly')
      assert.equal(backend.images.paths.walk, before.walk, 'no filtered walk')
      assert.deepEqual(hits.map((h) => h.id), exactNearest(far, q, 10).map((r) => r.id))
    } finally {
      backend.images.exactFallbackShare = EXACT_FALLBACK_SHARE
    }
  })

  it('follows deletes, and is rebuilt from SQLite at open', async () => {
    const q = pool.query(1)
    const first = await backend.images.search(q, { k: 5, filter: { group: 'rare' } })
    assert.equal(await backend.images.remove(first[0]!.id), true)
    const after = await backend.images.search(q, { k: 5, filter: { group: 'rare' } })
    assert.ok(!after.some((h) => h.id === first[0]!.id))
    assert.deepEqual(after.slice(0, 4).map((h) => h.id), first.slice(1).map((h) => h.id))
    pool.removed([first[0]!.id])
    await backend.close()
    backend = await openSqliteBackend({ dataDir: dir }, identity)
    assert.deepEqual((await backend.images.search(q, { k: 5, filter: { group: 'rare' } })).map((h) => h.id), after.map((h) => h.id))
    // a new row takes the freed label, with other metadata: the index holds the new row's values only
    const [out] = await backend.images.add([{ ...pool.extra(1), metadata: { group: 'fresh', i: -1 } }])
    assert.equal(out?.status, 'indexed')
    assert.deepEqual((await backend.images.search(q, { k: 5, filter: { group: 'fresh' } })).map((h) => h.id), [pool.extra(1).id])
    assert.deepEqual((await backend.images.search(q, { k: 5, filter: { i: { $lt: 0 } } })).map((h) => h.id), [pool.extra(1).id])
    assert.ok(!(await backend.images.search(q, { k: 100, filter: { group: 'rare' } })).some((h) => h.id === pool.extra(1).id))
  })
})

describe('MetadataIndex', () => {
  it('keeps its sorted columns right through many adds, deletes and reused labels', () => {
    const index = new MetadataIndex()
    const truth = new Map<number, number>()
    let seed = 7
    const rand = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
    for (let step = 0; step < 20_000; step++) {
      const label = Math.floor(rand() * 3000)
      const v = truth.get(label)
      if (v !== undefined) {
        index.delete(label, { n: v })
        truth.delete(label)
      } else {
        const n = Math.floor(rand() * 1000) / 10
        index.add(label, { n })
        truth.set(label, n)
      }
      if (step % 997 === 0) {
        const lo = Math.floor(rand() * 100)
        const got = [...index.select(parseFilter({ n: { $gte: lo, $lt: lo + 10 } })!)].sort((a, b) => a - b)
        const want = [...truth].filter(([, n]) => n >= lo && n < lo + 10).map(([l]) => l).sort((a, b) => a - b)
        assert.deepEqual(got, want, `step ${step}`)
      }
    }
    assert.equal(index.size, truth.size)
  })
})
