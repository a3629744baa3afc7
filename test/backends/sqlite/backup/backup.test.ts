/**
 * The embedded backend's backup file: written while rows keep arriving, restored into a fresh
 * DATA_DIR it holds every row acknowledged before it began, no part of a batch, the job progress
 * of exactly those rows, and answers every search as the original did; and a restore refuses
 * what it cannot restore, writing nothing.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { pack } from 'tar-stream'
import { openSqliteBackend, type SqliteBackend } from '../../../../src/backends/sqlite/open-sqlite-backend.js'
import { BackupFileError, readManifest, restoreBackup, type BackupManifest } from '../../../../src/backends/sqlite/backup/index.js'
import type { BackendIdentity, VectorHit } from '../../../../src/backends/ports.js'
import { TIMEOUT } from '../../../helpers/timeouts.js'
import { DIM, exactNearest, Pool } from '../../../helpers/vectors.js'

const identity: BackendIdentity = { modelId: 'test-model', dim: DIM }
const root = await mkdtemp(path.join(tmpdir(), 'backup-test-'))
after(async () => { await rm(root, { recursive: true, force: true }) })
let dirs = 0
const newDir = (): string => path.join(root, `data-${++dirs}`)

const ids = (hits: VectorHit[]): string[] => hits.map((h) => h.id)
const searchAll = async (b: SqliteBackend, pool: Pool, k = 10): Promise<Array<Array<{ id: string, score: number }>>> =>
  await Promise.all(Array.from({ length: 12 }, async (_, c) => (await b.images.search(pool.query(c), { k })).map((h) => ({ id: h.id, score: h.score }))))

/** A backend holding `n` pool images (in batches of 100) and 30 texts, and the file of one backup of it. */
async function backedUp (n: number, seed: number): Promise<{ backend: SqliteBackend, pool: Pool, file: string, manifest: BackupManifest }> {
  const pool = new Pool(n, 12, seed)
  const backend = await openSqliteBackend({ dataDir: newDir(), checkpointEvery: 250 }, identity)
  for (let i = 0; i < n; i += 100) await backend.images.add(pool.rows.slice(i, i + 100))
  await backend.texts.add(pool.texts(30))
  const info = await backend.backups.create()
  const file = path.join(backend.backups.dir, info.name)
  return { backend, pool, file, manifest: await readManifest(file) }
}

describe('a backup restored into a fresh DATA_DIR', { timeout: TIMEOUT.unit * 4 }, () => {
  it('holds every row and answers every search exactly as the original did', async () => {
    const { backend, pool, file, manifest } = await backedUp(1500, 1)
    try {
      assert.equal(manifest.images, 1500)
      assert.equal(manifest.texts, 30)
      assert.equal(manifest.modelId, 'test-model')
      const before = await searchAll(backend, pool)
      const textsBefore = await backend.texts.search(pool.query(3), { k: 5 })
      const target = newDir()
      const { manifest: restored } = await restoreBackup(file, target, identity)
      assert.deepEqual(restored, manifest)
      const copy = await openSqliteBackend({ dataDir: target }, identity)
      try {
        assert.equal(await copy.images.count(), 1500)
        assert.equal(await copy.texts.count(), 30)
        // the graph came with the backup: same ids, same scores, in the same order (not a rebuild)
        assert.deepEqual(await searchAll(copy, pool), before)
        assert.deepEqual(ids(await copy.texts.search(pool.query(3), { k: 5 })), ids(textsBefore))
        const img = await copy.images.get('img-7')
        assert.deepEqual(img?.metadata, pool.byId.get('img-7')!.metadata)
      } finally { await copy.close() }
    } finally { await backend.close() }
  })

  it('taken while batches keep committing, holds every batch acknowledged before it began, whole, with its job progress', async () => {
    const pool = new Pool(4000, 12, 2)
    const backend = await openSqliteBackend({ dataDir: newDir(), hnsw: { efSearch: 400 } }, identity)
    try {
      const BATCH = 50
      const jobId = 'job-1'
      await backend.jobs.create({ id: jobId, kind: 'items', source: { items: pool.rows.length }, root: '/nowhere', items: pool.rows.map((r) => ({ path: `${r.id}.png`, id: r.id })) })
      await backend.jobs.setStatus(jobId, 'running')
      // shared with the writer below, so the loops read them through an object
      const progress = { acknowledged: 0, stop: false }
      const writer = (async () => {
        for (let i = 0; i < pool.rows.length && !progress.stop; i += BATCH) {
          const rows = pool.rows.slice(i, i + BATCH)
          await backend.images.add(rows, { jobId, outcomes: rows.map((r, j) => ({ seq: i + j, item: `${r.id}.png`, row: j })) })
          progress.acknowledged = i + rows.length
          await new Promise((resolve) => setImmediate(resolve))
        }
      })()
      while (progress.acknowledged < 1000) await new Promise((resolve) => setTimeout(resolve, 5))
      const ackedBefore = progress.acknowledged
      const info = await backend.backups.create()
      const ackedAfter = progress.acknowledged
      progress.stop = true
      await writer
      assert.ok(ackedAfter > ackedBefore, `the writer kept committing during the backup (${ackedBefore} → ${ackedAfter})`)
      assert.ok(info.images >= ackedBefore && info.images <= ackedAfter, `backup holds ${info.images}: at least the ${ackedBefore} acknowledged before, at most ${ackedAfter}`)
      assert.equal(info.images % BATCH, 0, 'no half batch')
      assert.deepEqual(info.unfinishedJobs.map((j) => [j.id, j.done]), [[jobId, info.images]], 'the job progress of exactly the rows it holds')

      const target = newDir()
      await restoreBackup(path.join(backend.backups.dir, info.name), target, identity)
      const copy = await openSqliteBackend({ dataDir: target, hnsw: { efSearch: 400 } }, identity)
      try {
        assert.equal(await copy.images.count(), info.images)
        const held = pool.rows.slice(0, info.images)
        assert.deepEqual([...await copy.images.existingIds(held.map((r) => r.id))].length, info.images)
        const job = await copy.jobs.get(jobId)
        assert.equal(job?.done, info.images)
        assert.equal((await copy.jobs.pending(jobId, 1))[0]?.seq, info.images, 'the restored job resumes at the first item the backup lacks')
        // the original at backup time held exactly these rows: make it so again, then compare
        for (const r of pool.rows.slice(info.images, progress.acknowledged)) await backend.images.remove(r.id)
        for (let c = 0; c < 12; c++) {
          const q = pool.query(c)
          const want = exactNearest(held, q, 10).map((r) => r.id)
          assert.deepEqual(ids(await copy.images.search(q, { k: 10 })), want, `query ${c}: the restored top-10 is the exact top-10 of the rows at backup time`)
          assert.deepEqual(ids(await backend.images.search(q, { k: 10 })), want, `query ${c}: the original answers the same`)
        }
      } finally { await copy.close() }
    } finally { await backend.close() }
  })
})

describe('a restore refuses, writing nothing', { timeout: TIMEOUT.unit * 4 }, () => {
  let good: { file: string, manifest: BackupManifest }
  const refuse = async (file: string, pattern: RegExp, id: BackendIdentity = identity, target = path.join(root, `refused-${++dirs}`)): Promise<void> => {
    const parent = path.dirname(target)
    const before = (await readdir(parent)).sort()
    const existed = await stat(target).then(() => true, () => false)
    await assert.rejects(restoreBackup(file, target, id), (err: Error) => {
      assert.ok(err instanceof BackupFileError, `a BackupFileError, got ${err.name}: ${err.message}`)
      assert.match(err.message, pattern)
      return true
    })
    assert.deepEqual((await readdir(parent)).sort(), before, 'no temp folder or DATA_DIR left behind')
    if (!existed) assert.equal(await stat(target).then(() => true, () => false), false)
  }

  it('setup: one good backup', async () => {
    const made = await backedUp(300, 3)
    await made.backend.close()
    good = made
  })

  it('a DATA_DIR that is not empty', async () => {
    const target = newDir()
    await mkdir(target)
    await writeFile(path.join(target, 'keep-me.txt'), 'mine')
    await refuse(good.file, /is not empty .*keep-me\.txt.*new or empty folder/, identity, target)
    assert.equal(await readFile(path.join(target, 'keep-me.txt'), 'utf8'), 'mine')
  })

  it('a file that is not a backup: random bytes, a JSON file, a tar without a manifest, an empty file', async () => {
    const junk = path.join(root, 'junk.bin')
    await writeFile(junk, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)))
    await refuse(junk, /is not an align-search backup/)
    const json = path.join(root, 'notes.json')
    await writeFile(json, JSON.stringify({ format: 'something-else' }))
    await refuse(json, /is not an align-search backup/)
    const tar = path.join(root, 'other.tar')
    const p = pack()
    p.entry({ name: 'hello.txt' }, 'hi')
    p.finalize()
    const chunks: Buffer[] = []
    for await (const c of p) chunks.push(c as Buffer)
    await writeFile(tar, Buffer.concat(chunks))
    await refuse(tar, /is not an align-search backup: its first member is hello\.txt/)
    const empty = path.join(root, 'empty.tar')
    await writeFile(empty, '')
    await refuse(empty, /is not an align-search backup: it is empty/)
    await refuse(path.join(root, 'no-such-file.tar'), /does not exist/)
  })

  it('a backup of another model (id or dimension)', async () => {
    await refuse(good.file, /backup of model test-model \(dim 16\); MODEL_DIR holds other-model \(dim 16\)/, { modelId: 'other-model', dim: DIM })
    await refuse(good.file, /backup of model test-model \(dim 16\); MODEL_DIR holds test-model \(dim 32\)/, { modelId: 'test-model', dim: 32 })
  })

  it('a truncated file, cut anywhere', async () => {
    const size = (await stat(good.file)).size
    for (const at of [200, 3000, Math.floor(size / 2), size - 1536]) {
      const cut = path.join(root, `cut-${at}.tar`)
      await writeFile(cut, (await readFile(good.file)).subarray(0, at))
      await refuse(cut, at < 1024 ? /not an align-search backup|truncated/ : /is truncated/)
    }
  })

  it('a damaged file: one byte changed inside the database, and inside a graph', async () => {
    const bytes = await readFile(good.file)
    const offsetOf = (name: string): number => {
      // the member's data starts at the 512-byte block after its header
      const at = bytes.indexOf(Buffer.from(`${name}\0`))
      assert.ok(at >= 0)
      return at + 512
    }
    for (const [member, delta] of [['align-search.db', 5000], ['images.hnsw', 700]] as const) {
      const copy = Buffer.from(bytes)
      const at = offsetOf(member) + delta
      copy[at] = copy[at]! ^ 0xff
      const file = path.join(root, `damaged-${member}.tar`)
      await writeFile(file, copy)
      await refuse(file, new RegExp(`is damaged: ${member.replace('.', '\\.')} does not match`))
    }
  })
})
