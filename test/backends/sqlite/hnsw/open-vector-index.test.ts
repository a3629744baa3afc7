import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { openVectorIndex, sidecarPath } from '../../../../src/backends/sqlite/hnsw/index.js'
import { openStore, type Store } from '../../../../src/backends/sqlite/store/index.js'
import { TIMEOUT } from '../../../helpers/timeouts.js'
import { randomUnitVectors } from './random-vectors.js'

const DIM = 16
const root = mkdtempSync(path.join(tmpdir(), 'open-index-'))
after(() => { rmSync(root, { recursive: true, force: true }) })
let n = 0

function setup (): { dir: string, store: Store, file: string } {
  const dir = path.join(root, `d${++n}`)
  const store = openStore(dir, { modelId: 'm', dim: DIM })
  return { dir, store, file: path.join(dir, 'images.hnsw') }
}

/** inserts rows into SQLite only (as if the process died before the index saw them) */
function insertRows (store: Store, ids: string[], vectors: Float32Array[]): Array<{ label: number, seq: number, vector: Float32Array }> {
  return store.transaction(() => ids.map((id, i) => ({
    ...store.images.insert({ id, sha256: `sha-${id}`, width: 1, height: 1, metadata: {}, embedding: vectors[i]!, thumbnail: null }),
    vector: vectors[i]!
  })))
}

function capture (): { logger: { info: (...a: unknown[]) => void, warn: (...a: unknown[]) => void, error: (...a: unknown[]) => void }, lines: Array<{ level: string, msg: string }> } {
  const lines: Array<{ level: string, msg: string }> = []
  const at = (level: string) => (_o: unknown, msg?: unknown) => { lines.push({ level, msg: String(msg) }) }
  return { logger: { info: at('info'), warn: at('warn'), error: at('error') }, lines }
}

describe('openVectorIndex', { timeout: TIMEOUT.unit }, () => {
  it('after a snapshot load, copies every live vector to its int8 copy from SQLite before it resolves', async () => {
    const { store, file } = setup()
    const vecs = randomUnitVectors(3000, DIM, 5)
    insertRows(store, vecs.map((_, i) => `img${i}`), vecs)
    await (await openVectorIndex(store, 'images', file)).close()
    const idx = await openVectorIndex(store, 'images', file)
    assert.equal(vecs.filter((_, label) => idx.index.hasCode(label)).length, vecs.length, 'every vector copied when open resolves')
    const q = vecs[0]!
    for (const label of [0, 1, 2999]) assert.ok(Math.abs(idx.approxCosine(q, label) - dot(q, vecs[label]!)) < 2e-3)
    await idx.close()
    store.close()
  })

  it('builds from SQLite, snapshots on close, and replays rows added and deleted after the snapshot', async () => {
    const { store, file } = setup()
    const vecs = randomUnitVectors(400, DIM, 1)
    const ids = vecs.map((_, i) => `img${i}`)
    insertRows(store, ids.slice(0, 300), vecs.slice(0, 300))

    let idx = await openVectorIndex(store, 'images', file, { checkpointEvery: 100_000 })
    assert.equal(idx.size, 300)
    await idx.close()
    assert.ok(existsSync(file) && existsSync(sidecarPath(file)))
    const snapSeq = (JSON.parse(readFileSync(sidecarPath(file), 'utf8')) as { meta: { seq: number } }).meta.seq
    assert.equal(snapSeq, idx.seq)

    // after the snapshot: 100 rows added, 20 old ones deleted, one label reused — SQLite only
    const deleted = ids.slice(0, 20)
    store.transaction(() => { for (const id of deleted) store.images.remove(id) })
    const added = insertRows(store, ids.slice(300), vecs.slice(300))
    assert.ok(added.some((r) => r.label < 20), 'freed labels were reused')

    const { logger, lines } = capture()
    idx = await openVectorIndex(store, 'images', file, { checkpointEvery: 100_000, logger })
    assert.ok(lines.some((l) => l.msg === 'index snapshot replayed'), JSON.stringify(lines))
    assert.ok(!lines.some((l) => l.level === 'warn'))
    assert.equal(idx.size, 380)
    const labelOf = new Map(store.images.labels().map((r) => [r.label, r.seq]))
    for (const r of added) {
      const top = idx.search(r.vector, 1)[0]!
      assert.equal(top.label, r.label)
      assert.ok(top.score > 0.9999)
    }
    for (let i = 0; i < 20; i++) {
      // the deleted vectors are gone, even where their label now holds another image
      for (const hit of idx.search(vecs[i]!, 5)) {
        assert.ok(labelOf.has(hit.label))
        assert.ok(hit.score < 0.9999, `deleted img${i} still found`)
      }
    }
    await idx.close()
    store.close()
  })

  it('rebuilds from SQLite, with a warning, when the snapshot is corrupt', async () => {
    const { store, file } = setup()
    const vecs = randomUnitVectors(200, DIM, 2)
    insertRows(store, vecs.map((_, i) => `i${i}`), vecs)
    await (await openVectorIndex(store, 'images', file)).close()
    const bytes = readFileSync(file)
    bytes.fill(7, 64, 256)
    writeFileSync(file, bytes)

    const { logger, lines } = capture()
    const idx = await openVectorIndex(store, 'images', file, { logger })
    assert.ok(lines.some((l) => l.level === 'warn' && /rebuilding/.test(l.msg)), JSON.stringify(lines))
    assert.equal(idx.size, 200)
    assert.equal(idx.search(vecs[17]!, 1)[0]!.label, store.images.ref('i17')!.label)
    await idx.close()

    // the rebuilt index was snapshotted and loads cleanly next time
    const again = capture()
    const idx2 = await openVectorIndex(store, 'images', file, { logger: again.logger })
    assert.ok(!again.lines.some((l) => l.level === 'warn'))
    assert.equal(idx2.size, 200)
    await idx2.close()
    store.close()
  })

  it('rebuilds when the snapshot file is missing but its sidecar is not', async () => {
    const { store, file } = setup()
    const vecs = randomUnitVectors(20, DIM, 3)
    insertRows(store, vecs.map((_, i) => `i${i}`), vecs)
    await (await openVectorIndex(store, 'images', file)).close()
    rmSync(file)
    const { logger, lines } = capture()
    const idx = await openVectorIndex(store, 'images', file, { logger })
    assert.ok(lines.some((l) => l.level === 'warn'))
    assert.equal(idx.size, 20)
    await idx.close()
    store.close()
  })

  it('appends in commit order, removes at once (even while still queued), and checkpoints every N changes', async () => {
    const { store, file } = setup()
    const idx = await openVectorIndex(store, 'images', file, { checkpointEvery: 10 })
    const vecs = randomUnitVectors(30, DIM, 4)
    const rows = insertRows(store, vecs.map((_, i) => `a${i}`), vecs)
    const pending = idx.append(rows)
    // deleted before the queued insert ran: it must never become searchable
    const gone = store.transaction(() => store.images.remove('a5'))!
    idx.remove(gone)
    await pending
    assert.equal(idx.size, 29)
    assert.ok(idx.search(vecs[5]!, 29).every((r) => r.label !== gone.label))
    await idx.checkpoint() // wait for the automatic one too
    assert.ok(existsSync(file), 'a checkpoint was written after 10 changes')
    const seq = (JSON.parse(readFileSync(sidecarPath(file), 'utf8')) as { meta: { seq: number } }).meta.seq
    assert.equal(seq, rows[rows.length - 1]!.seq)

    const removed = store.transaction(() => store.images.remove('a7'))!
    idx.remove(removed)
    assert.ok(idx.search(vecs[7]!, 5).every((r) => r.label !== removed.label))
    await idx.close()
    const back = await openVectorIndex(store, 'images', file)
    assert.equal(back.size, 28)
    assert.ok(back.search(vecs[7]!, 5).every((r) => r.label !== removed.label))
    await back.close()
    store.close()
  })

  it('rebuilds when M or efConstruction change', async () => {
    const { store, file } = setup()
    const vecs = randomUnitVectors(50, DIM, 5)
    insertRows(store, vecs.map((_, i) => `i${i}`), vecs)
    await (await openVectorIndex(store, 'images', file, { M: 16 })).close()
    const { logger, lines } = capture()
    const idx = await openVectorIndex(store, 'images', file, { M: 8, logger })
    assert.equal(idx.params.M, 8)
    assert.ok(lines.some((l) => /parameters changed/.test(l.msg)))
    assert.equal(idx.size, 50)
    await idx.close()
    store.close()
  })
})

function dot (a: Float32Array, b: Float32Array): number {
  let s = 0
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!
  return s
}
