import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { ConflictError, StorageFullError } from '../../../../src/core/errors.js'
import { MAX_JOB_DUPLICATES, MAX_JOB_ERRORS, mapStorageError, openStore, type Store } from '../../../../src/backends/sqlite/store/index.js'
import { TIMEOUT } from '../../../helpers/timeouts.js'

const root = mkdtempSync(path.join(tmpdir(), 'store-'))
after(() => { rmSync(root, { recursive: true, force: true }) })
let n = 0
function freshDir (): string { return path.join(root, `d${++n}`) }

function addImage (store: Store, id: string, sha: string): { label: number, seq: number } {
  return store.transaction(() => store.images.insert({
    id, sha256: sha, width: 4, height: 3, metadata: { id }, embedding: new Float32Array([1, 0, 0, 0]), thumbnail: Buffer.from('webp')
  }))
}

describe('openStore', { timeout: TIMEOUT.unit }, () => {
  it('uses WAL with synchronous=FULL and records the model', () => {
    const dir = freshDir()
    const store = openStore(dir, { modelId: 'm1', dim: 4 })
    assert.equal(store.db.pragma('journal_mode', { simple: true }), 'wal')
    assert.equal(store.db.pragma('synchronous', { simple: true }), 2)
    assert.equal(store.getMeta('model_id'), 'm1')
    assert.equal(store.getMeta('dim'), '4')
    assert.equal(store.getMeta('distance'), 'cosine')
    store.close()
  })

  it('refuses to open data built by another model, and says how to re-index', () => {
    const dir = freshDir()
    openStore(dir, { modelId: 'align-mini-v1', dim: 256 }).close()
    assert.throws(() => openStore(dir, { modelId: 'align-base', dim: 640 }), (err: Error & { statusCode?: number }) => {
      assert.ok(err instanceof ConflictError)
      assert.equal(err.statusCode, 409)
      assert.match(err.message, /built with model align-mini-v1 \(dim 256\); this server runs align-base \(dim 640\)/)
      assert.match(err.message, /empty DATA_DIR/)
      assert.match(err.message, /npm run index -- <dir>/)
      return true
    })
    assert.throws(() => openStore(dir, { modelId: 'align-mini-v1', dim: 128 }), ConflictError)
    openStore(dir, { modelId: 'align-mini-v1', dim: 256 }).close()
  })

  it('reuses freed labels, and every insert gets a larger seq', () => {
    const store = openStore(freshDir(), { modelId: 'm', dim: 4 })
    const a = addImage(store, 'a', 'sha-a')
    const b = addImage(store, 'b', 'sha-b')
    const c = addImage(store, 'c', 'sha-c')
    assert.deepEqual([a.label, b.label, c.label], [0, 1, 2])
    assert.deepEqual(store.transaction(() => store.images.remove('b')), b)
    assert.equal(store.images.get('b'), undefined)
    const d = addImage(store, 'd', 'sha-d')
    assert.equal(d.label, 1, 'the freed label comes back')
    assert.ok(d.seq > c.seq)
    const e = addImage(store, 'e', 'sha-e')
    assert.equal(e.label, 3)
    assert.equal(store.images.count(), 4)
    assert.deepEqual(store.images.labels().map((r) => r.label), [0, 1, 2, 3])
    assert.deepEqual([...store.images.vectorsAfter(c.seq)].map((r) => r.label), [1, 3])
    store.close()
  })

  it('rolls back a failed transaction, labels and all', () => {
    const store = openStore(freshDir(), { modelId: 'm', dim: 4 })
    addImage(store, 'a', 'sha-a')
    assert.throws(() => store.transaction(() => {
      store.images.insert({ id: 'b', sha256: 'sha-b', width: 1, height: 1, metadata: {}, embedding: new Float32Array(4), thumbnail: null })
      store.images.insert({ id: 'c', sha256: 'sha-a', width: 1, height: 1, metadata: {}, embedding: new Float32Array(4), thumbnail: null })
    }), /UNIQUE/)
    assert.equal(store.images.count(), 1)
    assert.equal(addImage(store, 'b', 'sha-b').label, 1)
    store.close()
  })

  it('keeps images, embeddings and thumbnails across a reopen', () => {
    const dir = freshDir()
    const store = openStore(dir, { modelId: 'm', dim: 4 })
    addImage(store, 'x', 'sha-x')
    store.close()
    const again = openStore(dir, { modelId: 'm', dim: 4 })
    assert.deepEqual(again.images.get('x')?.metadata, { id: 'x' })
    assert.deepEqual([...again.images.embedding('x')!], [1, 0, 0, 0])
    assert.equal(again.images.thumbnail('x')?.toString(), 'webp')
    assert.equal(again.images.idBySha('sha-x'), 'x')
    again.close()
  })

  it('resumes a job at the first pending item, and never counts an item twice', () => {
    const dir = freshDir()
    let store = openStore(dir, { modelId: 'm', dim: 4 })
    const items = ['a.png', 'b.png', 'c.png', 'd.png', 'e.png'].map((p) => ({ path: p }))
    store.jobs.create({ id: 'j1', kind: 'items', source: { items: items.length }, root: '/import', items })
    const first = store.jobs.pending('j1', 2)
    assert.deepEqual(first.map((x) => x.item.path), ['a.png', 'b.png'])
    store.transaction(() => store.jobs.complete('j1', [
      { seq: 0, status: 'indexed', item: 'a.png' },
      { seq: 1, status: 'failed', item: 'b.png', error: 'not an image' }
    ]))
    store.close()

    store = openStore(dir, { modelId: 'm', dim: 4 })
    assert.deepEqual(store.jobs.pending('j1', 10).map((x) => x.item.path), ['c.png', 'd.png', 'e.png'])
    // a.png again (a replay) is not counted twice; c.png repeats a.png's bytes
    store.transaction(() => store.jobs.complete('j1', [{ seq: 0, status: 'indexed', item: 'a.png' }, { seq: 2, status: 'duplicate', item: 'c.png', id: 'img-a' }]))
    const view = store.jobs.view('j1')!
    assert.equal(view.status, 'queued')
    assert.deepEqual({ total: view.total, done: view.done, indexed: view.indexed, duplicate: view.duplicate, failed: view.failed }, { total: 5, done: 2, indexed: 1, duplicate: 1, failed: 1 })
    assert.deepEqual(view.errors, [{ item: 'b.png', error: 'not an image' }])
    assert.deepEqual(view.duplicates, [{ item: 'c.png', id: 'img-a' }])
    assert.deepEqual(store.jobs.unfinished().map((j) => j.id), ['j1'])
    store.jobs.setStatus('j1', 'done')
    assert.deepEqual(store.jobs.unfinished(), [])
    store.close()
  })

  it('caps the stored errors of a job but keeps the count exact', () => {
    const store = openStore(freshDir(), { modelId: 'm', dim: 4 })
    const items = Array.from({ length: MAX_JOB_ERRORS + 50 }, (_, i) => ({ path: `${i}.png` }))
    store.jobs.create({ id: 'j', kind: 'items', source: { items: items.length }, root: '/r', items })
    const extra = 50
    store.transaction(() => store.jobs.complete('j', items.map((it, seq) => ({ seq, status: 'failed', item: it.path, error: 'bad' }))))
    const view = store.jobs.view('j')!
    assert.equal(view.failed, MAX_JOB_ERRORS + extra)
    assert.equal(view.errors.length, MAX_JOB_ERRORS)
    // duplicates are kept within their own bound the same way
    const dups = Array.from({ length: MAX_JOB_DUPLICATES + extra }, (_, i) => ({ path: `${i}.png` }))
    store.jobs.create({ id: 'd', kind: 'items', source: { items: dups.length }, root: '/r', items: dups })
    store.transaction(() => store.jobs.complete('d', dups.map((it, seq) => ({ seq, status: 'duplicate', item: it.path, id: `stored-${seq}` }))))
    const dv = store.jobs.view('d')!
    assert.deepEqual([dv.done, dv.duplicate, dv.indexed], [MAX_JOB_DUPLICATES + extra, MAX_JOB_DUPLICATES + extra, 0])
    assert.equal(dv.duplicates.length, MAX_JOB_DUPLICATES)
    assert.deepEqual(dv.duplicates[0], { item: '0.png', id: 'stored-0' })
    store.close()
  })

  it('lists a directory job\'s files later, once: a second listing leaves the first as it is', () => {
    const store = openStore(freshDir(), { modelId: 'm', dim: 4 })
    store.jobs.create({ id: 'd', kind: 'directory', source: { directory: 'x' }, root: '/r' })
    assert.equal(store.jobs.get('d')!.expanded, false)
    assert.equal(store.jobs.expand('d', [{ path: 'x/1.png' }, { path: 'x/2.png' }]), true)
    assert.equal(store.jobs.expand('d', [{ path: 'x/1.png' }]), false)
    const job = store.jobs.get('d')!
    assert.equal(job.expanded, true)
    assert.equal(job.total, 2)
    assert.equal(store.jobs.pending('d', 10).length, 2)
    store.close()
  })

  it('turns a full disk into StorageFullError (507)', () => {
    assert.throws(() => mapStorageError(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })), (err: Error & { statusCode?: number }) => {
      assert.ok(err instanceof StorageFullError)
      assert.equal(err.statusCode, 507)
      return true
    })
    assert.throws(() => mapStorageError(Object.assign(new Error('no space'), { code: 'ENOSPC' })), StorageFullError)
    assert.throws(() => mapStorageError(new Error('other')), /other/)
  })
})
