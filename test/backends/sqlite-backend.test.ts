/** The SQLite + hnswlib adapter behind the async backend ports (src/backends/ports.ts). */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { openSqliteBackend, type SqliteBackend } from '../../src/backends/sqlite/open-sqlite-backend.js'
import type { NewImage } from '../../src/backends/ports.js'

const DIM = 16
const identity = { modelId: 'test-model', dim: DIM }

/** unit vectors around a few centres, like embeddings of a few concepts */
function vector (centre: number, noise: number): Float32Array {
  const v = new Float32Array(DIM)
  for (let j = 0; j < DIM; j++) v[j] = (j === centre ? 1 : 0) + noise * Math.sin(7.3 * (j + 1) * (noise * 1000 + centre + 1))
  let n = 0
  for (const x of v) n += x * x
  return v.map((x) => x / Math.sqrt(n))
}

function image (i: number): NewImage {
  return { id: `img-${i}`, sha256: i.toString(16).padStart(64, '0'), width: 1, height: 1, metadata: { group: i % 10 === 0 ? 'rare' : 'common', i }, embedding: vector(i % 4, 0.01 * (i + 1)), thumbnail: null }
}

describe('SQLite backend', () => {
  let dir: string
  let backend: SqliteBackend
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sqlite-backend-'))
    backend = await openSqliteBackend({ dataDir: dir }, identity)
  })
  after(async () => {
    await backend.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('adds rows and the job progress in one write, and reports duplicates and id conflicts', async () => {
    await backend.jobs.create({ id: 'job-1', kind: 'items', source: {}, root: dir, items: Array.from({ length: 3 }, (_, i) => ({ path: `${i}.png` })) })
    const rows = Array.from({ length: 40 }, (_, i) => image(i))
    const out = await backend.images.add(rows, { jobId: 'job-1', outcomes: [{ seq: 0, item: '0.png', row: 0 }, { seq: 1, item: '1.png', row: 1 }, { seq: 2, item: '2.png', status: 'failed', error: 'unreadable' }] })
    assert.ok(out.every((o) => o.status === 'indexed'))
    const job = await backend.jobs.view('job-1')
    assert.deepEqual([job?.done, job?.indexed, job?.duplicate, job?.failed], [2, 2, 0, 1])
    const again = await backend.images.add([image(3), { ...image(99), id: 'img-5' }])
    assert.deepEqual(again[0], { status: 'duplicate', id: 'img-3' })
    assert.equal(again[1]?.status, 'failed')
    assert.equal(await backend.images.count(), 40)
    // a job's duplicates name the stored id: one stored earlier, and one repeating a row of the same write
    await backend.jobs.create({ id: 'job-2', kind: 'items', source: {}, root: dir, items: Array.from({ length: 3 }, (_, i) => ({ path: `${i}.png` })) })
    const fresh = { ...image(100), id: undefined }
    const out2 = await backend.images.add([image(4), fresh], { jobId: 'job-2', outcomes: [{ seq: 0, item: 'four.png', row: 0 }, { seq: 1, item: 'new.png', row: 1 }, { seq: 2, item: 'new-again.png', row: 1, duplicate: true }] })
    assert.deepEqual(out2.map((o) => o.status), ['duplicate', 'indexed'])
    const job2 = await backend.jobs.view('job-2')
    assert.deepEqual([job2?.done, job2?.indexed, job2?.duplicate, job2?.failed], [3, 1, 2, 0])
    assert.deepEqual(job2?.duplicates, [{ item: 'four.png', id: 'img-4' }, { item: 'new-again.png', id: (out2[1] as { id: string }).id }])
  })

  it('a delete leaves the index: k results still come back and the index count goes down', async () => {
    const q = vector(1, 0)
    const first = await backend.images.search(q, { k: 5 })
    assert.equal(first.length, 5)
    const sizeBefore = backend.images.index.size
    for (const h of first.slice(0, 3)) assert.equal(await backend.images.remove(h.id), true)
    assert.equal(backend.images.index.size, sizeBefore - 3)
    const next = await backend.images.search(q, { k: 5 })
    assert.equal(next.length, 5)
    for (const h of first.slice(0, 3)) assert.ok(!next.some((n) => n.id === h.id))
    assert.equal(await backend.images.remove(first[0]!.id), false)
  })

  it('applies the filter as data, minScore, excludeIds and returns embeddings on request', async () => {
    const rare = await backend.images.search(vector(2, 0), { k: 3, filter: { group: 'rare' }, withEmbeddings: true })
    assert.equal(rare.length, 3)
    assert.ok(rare.every((h) => h.metadata.group === 'rare' && h.embedding?.length === DIM))
    const all = await backend.images.search(vector(2, 0), { k: 10 })
    const cut = all[4]!.score
    const above = await backend.images.search(vector(2, 0), { k: 10, minScore: cut })
    assert.ok(above.length >= 5 && above.length < 10 && above.every((h) => h.score >= cut))
    const without = await backend.images.search(vector(2, 0), { k: 10, excludeIds: [all[0]!.id] })
    assert.ok(!without.some((h) => h.id === all[0]!.id))
  })

  it('keeps everything across a restart, and refuses another model', async () => {
    const count = await backend.images.count()
    await backend.close()
    await assert.rejects(openSqliteBackend({ dataDir: dir }, { modelId: 'other', dim: DIM }), /built with model test-model/)
    backend = await openSqliteBackend({ dataDir: dir }, identity)
    assert.equal(await backend.images.count(), count)
    assert.equal((await backend.images.search(vector(0, 0), { k: 5 })).length, 5)
    assert.deepEqual((await backend.jobs.list({ limit: 10 })).map((j) => j.id), ['job-2', 'job-1'])
  })
})
