import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { HnswIndex, SnapshotError } from '../../../../src/backends/sqlite/hnsw/index.js'
import { TIMEOUT } from '../../../helpers/timeouts.js'
import { bruteForce, randomUnitVectors } from './random-vectors.js'

const dir = mkdtempSync(path.join(tmpdir(), 'hnsw-index-'))
after(() => { rmSync(dir, { recursive: true, force: true }) })

function labelsOf (n: number, from = 0): number[] {
  return Array.from({ length: n }, (_, i) => i + from)
}

describe('HnswIndex', { timeout: TIMEOUT.unit }, () => {
  it('finds ≥ 95% of the true 10 nearest neighbours at ef 64 (5k random vectors, dim 32)', async () => {
    const dim = 32
    const data = randomUnitVectors(5000, dim, 7)
    const index = HnswIndex.create(dim, { M: 16, efConstruction: 200, efSearch: 64 })
    await index.add(labelsOf(data.length), data)
    assert.equal(index.size, 5000)
    const byLabel = new Map(data.map((v, i) => [i, v]))
    const queries = randomUnitVectors(200, dim, 99)
    let hits = 0
    for (const q of queries) {
      const truth = new Set(bruteForce(q, byLabel, 10).map((r) => r.label))
      const got = index.search(q, 10)
      assert.equal(got.length, 10)
      for (const r of got) if (truth.has(r.label)) hits++
    }
    const recall = hits / (queries.length * 10)
    assert.ok(recall >= 0.95, `recall@10 = ${recall}`)
  })

  it('a large add yields to the event loop, and a search between its slices sees a consistent index', async () => {
    const dim = 64
    const data = randomUnitVectors(4000, dim, 11)
    const index = HnswIndex.create(dim, { M: 16, efConstruction: 200 })
    let turns = 0
    const sizesSeen: number[] = []
    let adding = true
    const tick = (): void => {
      if (!adding) return
      turns++
      sizesSeen.push(index.size)
      index.search(data[0]!, 5) // must not throw while the add is half done
      setImmediate(tick)
    }
    setImmediate(tick)
    await index.add(labelsOf(data.length), data)
    adding = false
    assert.ok(turns >= 2, `other callbacks ran ${turns} times during a 4000-vector add`)
    assert.ok(sizesSeen.some((n) => n > 0 && n < data.length), 'a callback ran between two slices of the add')
    assert.equal(index.size, data.length)
    assert.equal(index.search(data[123]!, 1)[0]!.label, 123)
  })

  it('scores are cosine similarities, best first', async () => {
    const data = randomUnitVectors(300, 16, 3)
    const index = HnswIndex.create(16)
    await index.add(labelsOf(300), data)
    const q = data[42]!
    const got = index.search(q, 5)
    assert.equal(got[0]!.label, 42)
    assert.ok(Math.abs(got[0]!.score - 1) < 1e-5)
    for (let i = 1; i < got.length; i++) assert.ok(got[i - 1]!.score >= got[i]!.score)
    const exact = bruteForce(q, new Map(data.map((v, i) => [i, v])), 5)
    got.forEach((r, i) => assert.ok(Math.abs(r.score - exact[i]!.score) < 1e-5))
  })

  it('never returns a removed label, and reuses its slot when the label comes back', async () => {
    const data = randomUnitVectors(2000, 16, 5)
    const index = HnswIndex.create(16, { capacity: 2000 })
    await index.add(labelsOf(2000), data)
    const removed = new Set<number>()
    for (let l = 0; l < 2000; l += 3) { assert.equal(index.remove(l), true); removed.add(l) }
    assert.equal(index.remove(0), false, 'removing twice is a no-op')
    assert.equal(index.size, 2000 - removed.size)
    for (const l of [0, 3, 300, 1998]) {
      for (const r of index.search(data[l]!, 50)) assert.ok(!removed.has(r.label), `removed label ${r.label} returned`)
    }
    const everything = index.search(data[1]!, index.size)
    assert.equal(everything.length, index.size)
    for (const r of everything) assert.ok(!removed.has(r.label))

    // label 3 comes back with a new vector: found with it, and the index did not grow
    const fresh = randomUnitVectors(1, 16, 1234)[0]!
    await index.add([3], [fresh])
    assert.equal(index.capacity, 2000)
    const top = index.search(fresh, 1)[0]!
    assert.equal(top.label, 3)
    assert.ok(top.score > 0.9999)
    assert.ok(index.search(data[3]!, 5).every((r) => r.label !== 3 || r.score < 0.9999), 'old vector of label 3 is gone')
  })

  it('doubles its capacity when full', async () => {
    const index = HnswIndex.create(8, { capacity: 16 })
    assert.equal(index.capacity, 16)
    await index.add(labelsOf(100), randomUnitVectors(100, 8, 11))
    assert.equal(index.capacity, 128)
    assert.equal(index.size, 100)
    assert.equal(index.search(randomUnitVectors(1, 8, 2)[0]!, 100).length, 100)
  })

  it('filters by label, exactly like brute force over the kept labels', async () => {
    const data = randomUnitVectors(3000, 16, 21)
    const index = HnswIndex.create(16)
    await index.add(labelsOf(3000), data)
    const byLabel = new Map(data.map((v, i) => [i, v]))
    const keep = (l: number): boolean => l % 50 === 7 // 2% of the points
    for (const q of randomUnitVectors(20, 16, 77)) {
      const got = index.search(q, 10, keep)
      assert.ok(got.every((r) => keep(r.label)))
      const truth = bruteForce(q, byLabel, 10, keep).map((r) => r.label)
      assert.deepEqual(got.map((r) => r.label), truth)
    }
  })

  it('rejects vectors of the wrong size or with NaN', async () => {
    const index = HnswIndex.create(4)
    await assert.rejects(index.add([0], [new Float32Array(3)]), /3 dims, expected 4/)
    await assert.rejects(index.add([0], [new Float32Array([1, Number.NaN, 0, 0])]), /non-finite/)
    assert.throws(() => index.search(new Float32Array(5), 1), /5 dims/)
    assert.deepEqual(index.search(new Float32Array([1, 0, 0, 0]), 3), [])
  })

  it('snapshots and loads back the same index, deletions included', async () => {
    const data = randomUnitVectors(1500, 16, 31)
    const index = HnswIndex.create(16, { M: 12, efConstruction: 100, efSearch: 40 })
    await index.add(labelsOf(1500), data)
    for (let l = 0; l < 1500; l += 10) index.remove(l)
    const file = path.join(dir, 'roundtrip.hnsw')
    const info = await index.snapshot(file, { seq: 42 })
    assert.equal(info.count, index.size)
    assert.equal(info.deleted.length, 150)

    const { index: back, info: read } = await HnswIndex.load(file, 16, { efSearch: 40 })
    assert.deepEqual(read.meta, { seq: 42 })
    assert.equal(back.size, index.size)
    assert.deepEqual(back.params, { M: 12, efConstruction: 100, efSearch: 40 })
    for (const q of randomUnitVectors(10, 16, 5)) assert.deepEqual(back.search(q, 10), index.search(q, 10))
    assert.equal(back.has(10), false)
    await back.add([10], [data[10]!])
    assert.equal(back.search(data[10]!, 1)[0]!.label, 10)
  })

  it('removes made while a snapshot is being written apply at once and after it', async () => {
    const data = randomUnitVectors(4000, 32, 41)
    const index = HnswIndex.create(32)
    await index.add(labelsOf(4000), data)
    const file = path.join(dir, 'concurrent.hnsw')
    const writing = index.snapshot(file)
    index.remove(5)
    assert.ok(index.search(data[5]!, 10).every((r) => r.label !== 5))
    const adding = index.add([4000], [data[0]!]) // waits for the write
    const info = await writing
    await adding
    assert.equal(info.count, 4000, 'the file holds the state from before the remove')
    assert.ok(index.search(data[5]!, 10).every((r) => r.label !== 5))
    assert.equal(index.size, 4000)
  })

  it('refuses a snapshot whose bytes do not match the sidecar', async () => {
    const index = HnswIndex.create(8)
    await index.add(labelsOf(50), randomUnitVectors(50, 8, 1))
    const file = path.join(dir, 'corrupt.hnsw')
    await index.snapshot(file)
    const { openSync, writeSync, closeSync } = await import('node:fs')
    const fd = openSync(file, 'r+')
    writeSync(fd, Buffer.from([0xff, 0xff, 0xff, 0xff]), 0, 4, 100)
    closeSync(fd)
    await assert.rejects(HnswIndex.load(file, 8), SnapshotError)
    await assert.rejects(HnswIndex.load(path.join(dir, 'missing.hnsw'), 8), SnapshotError)
    await assert.rejects(HnswIndex.load(file, 16), SnapshotError)
  })
})

describe('HnswIndex scores', { timeout: TIMEOUT.unit }, () => {
  it('are cosines: a stored vector found by itself scores at most 1 (float32 rounding would give 1.0000001)', async () => {
    const index = HnswIndex.create(16, { M: 16, efConstruction: 200 })
    // sin(2·(i+1)): its cosine distance to itself comes out slightly below 0 in float32
    const v = Float32Array.from({ length: 16 }, (_, i) => Math.sin(2 * (i + 1)))
    await index.add([0], [v])
    const [hit] = index.search(v, 1)
    assert.ok(hit !== undefined && hit.score <= 1 && hit.score > 0.999999, `score ${hit?.score}`)
  })
  it('keeps an int8 copy of each vector whose cosine is within 2e-3 of the float one: after an add, a replace, and a snapshot load (copied on use, or given)', async () => {
    const dim = 256
    const data = randomUnitVectors(300, dim, 21)
    const queries = randomUnitVectors(20, dim, 22)
    const index = HnswIndex.create(dim)
    await index.add(labelsOf(data.length), data)
    const replaced = randomUnitVectors(1, dim, 23)[0]!
    let byLabel = (l: number): Float32Array => data[l]!
    const worst = (ix: HnswIndex, labels: number[]): number => {
      let err = 0
      for (const q of queries) for (const l of labels) err = Math.max(err, Math.abs(ix.approxCosine(q, l) - dot(q, byLabel(l))))
      return err
    }
    const all = labelsOf(data.length)
    assert.ok(worst(index, all) < 2e-3, `after add: ${worst(index, all)}`)
    await index.add([7], [replaced])
    byLabel = (l) => l === 7 ? replaced : data[l]!
    assert.ok(worst(index, [7]) < 2e-3, `after a replace: ${worst(index, [7])}`)
    const file = path.join(dir, 'codes.hnsw')
    await index.snapshot(file)
    const { index: back } = await HnswIndex.load(file, dim)
    assert.equal(back.hasCode(3), false, 'a snapshot holds no int8 copy')
    assert.ok(worst(back, [0, 7, 299]) < 2e-3, 'copied from hnswlib on first use')
    for (const l of all) if (!back.hasCode(l)) back.setCode(l, byLabel(l))
    assert.ok(worst(back, all) < 2e-3, `given from the float vectors: ${worst(back, all)}`)
  })
})

function dot (a: Float32Array, b: Float32Array): number {
  let s = 0
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!
  return s
}
