/**
 * ONE contract for every backend: the same tests run against SQLite + hnswlib, a real PostgreSQL
 * with pgvector (DATABASE_URL, or a throwaway cluster from the installed binaries) and PGlite
 * (PostgreSQL + pgvector in WASM, through `pg` over its socket). A backend that cannot run here
 * is skipped with the reason printed, never passed silently.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ConflictError } from '../../src/core/errors.js'
import { matchesFilter, parseFilter } from '../../src/core/metadata-filter.js'
import { openPostgresBackend, PostgresBackend } from '../../src/backends/postgres/open-postgres-backend.js'
import { reindex } from '../../src/backends/postgres/index-settings.js'
import type { PgVectorType } from '../../src/backends/postgres/postgres-options.js'
import { openSqliteBackend, type SqliteBackend } from '../../src/backends/sqlite/open-sqlite-backend.js'
import type { Backend, BackendIdentity } from '../../src/backends/ports.js'
import { startTestPostgres, type TestPostgres } from '../../scripts/lib/postgres-server.js'
import { TIMEOUT } from '../helpers/timeouts.js'
import { cosine, DIM, exactNearest, Pool } from '../helpers/vectors.js'

const identity: BackendIdentity = { modelId: 'test-model', dim: DIM }

/** How one backend is opened, and what it can be asked to do. */
interface Subject {
  name: string
  /** why this backend does not run here (printed as the skip reason) */
  skip?: string
  /** opens the backend on the subject's data (again: a restart, or a second process's view) */
  open: (id?: BackendIdentity, opts?: { vectorType?: PgVectorType }) => Promise<Backend>
  /** why a second instance cannot share the data at once; undefined when it can */
  noSecondInstance?: string
  cleanup: () => Promise<void>
}

async function sqliteSubject (): Promise<Subject> {
  const dir = await mkdtemp(path.join(tmpdir(), 'contract-sqlite-'))
  return {
    name: 'SQLite + hnswlib',
    open: async (id = identity) => await openSqliteBackend({ dataDir: dir }, id),
    noSecondInstance: 'the embedded backend belongs to one process (its HNSW index lives in that process)',
    cleanup: async () => { await rm(dir, { recursive: true, force: true }) }
  }
}

function postgresSubject (name: string, pg: TestPostgres | { skip: string }): Subject {
  if (!('url' in pg)) return { name, skip: pg.skip, open: async () => { throw new Error(pg.skip) }, cleanup: async () => {} }
  return {
    name: `${name} (${pg.kind})`,
    // PGlite is one session behind its socket: one connection, or two would share a transaction
    open: async (id = identity, opts = {}) => await openPostgresBackend({ databaseUrl: pg.url, poolSize: pg.multiConnection ? 4 : 1, ...opts }, id),
    ...(pg.multiConnection ? {} : { noSecondInstance: 'PGlite serves one session: a second connection would share its transactions' }),
    cleanup: async () => { await pg.stop() }
  }
}

const server = await startTestPostgres({ engine: 'server' })
const lite = await startTestPostgres({ engine: 'pglite' })
const subjects = [await sqliteSubject(), postgresSubject('PostgreSQL', server), postgresSubject('PGlite', lite)]
after(async () => { for (const s of subjects) await s.cleanup() })

for (const subject of subjects) {
  describe(`backend contract: ${subject.name}`, { timeout: TIMEOUT.server, ...(subject.skip === undefined ? {} : { skip: subject.skip }) }, () => {
    // 5000 rows: enough that PostgreSQL's planner walks the HNSW index rather than sorting the table
    const pool = new Pool(5000, 20, 7)
    let backend: Backend
    before(async () => { backend = await subject.open() })
    after(async () => { await backend?.close() })

    it('adds rows and the job progress in one write', async () => {
      await backend.jobs.create({ id: 'job-1', kind: 'items', source: { items: 3 }, root: '/data', items: [{ path: '0.png' }, { path: '1.png' }, { path: '2.png' }] })
      const out = await backend.images.add(pool.rows.slice(0, 1000), {
        jobId: 'job-1',
        outcomes: [{ seq: 0, item: '0.png', row: 0 }, { seq: 1, item: '1.png', row: 1 }, { seq: 2, item: '2.png', status: 'failed', error: 'unreadable' }]
      })
      assert.deepEqual(out, pool.rows.slice(0, 1000).map((r) => ({ status: 'indexed', id: r.id })))
      const job = await backend.jobs.view('job-1')
      assert.deepEqual([job?.done, job?.indexed, job?.duplicate, job?.failed, job?.errors], [2, 2, 0, 1, [{ item: '2.png', error: 'unreadable' }]])
      for (let i = 1000; i < pool.rows.length; i += 1000) await backend.images.add(pool.rows.slice(i, i + 1000))
      assert.deepEqual(await backend.jobs.pending('job-1', 10), [])
      assert.equal(await backend.images.count(), pool.rows.length)
    })

    it('dedupes by sha256, refuses an id owned by other content, and is idempotent when retried', async () => {
      const fresh = pool.extra(0)
      const twin = { ...pool.extra(1), id: undefined, sha256: fresh.sha256 }
      const batch = [pool.rows[3]!, { ...pool.extra(2), id: 'img-5' }, { ...fresh, id: undefined }, twin]
      const out = await backend.images.add(batch)
      assert.deepEqual(out[0], { status: 'duplicate', id: 'img-3' })
      assert.equal(out[1]?.status, 'failed')
      assert.match(out[1]?.status === 'failed' ? out[1].error : '', /id "img-5" is already used/)
      assert.equal(out[2]?.status, 'indexed')
      assert.deepEqual(out[3], { status: 'duplicate', id: out[2]?.id }, 'the same content twice in one batch is stored once')
      const again = await backend.images.add(batch)
      assert.deepEqual(again.map((o) => o.status), ['duplicate', 'failed', 'duplicate', 'duplicate'])
      assert.equal(await backend.images.count(), pool.rows.length + 1)
      await backend.images.remove(out[2]!.id)
    })

    it('a job counts indexed and duplicate items apart, naming the stored id each duplicate repeats', async () => {
      await backend.jobs.create({ id: 'job-2', kind: 'items', source: { items: 3 }, root: '/data', items: [{ path: 'four.png' }, { path: 'new.png' }, { path: 'new-again.png' }] })
      const fresh = { ...pool.extra(4), id: undefined }
      const out = await backend.images.add([pool.rows[4]!, fresh], {
        jobId: 'job-2',
        outcomes: [{ seq: 0, item: 'four.png', row: 0 }, { seq: 1, item: 'new.png', row: 1 }, { seq: 2, item: 'new-again.png', row: 1, duplicate: true }]
      })
      assert.deepEqual(out.map((o) => o.status), ['duplicate', 'indexed'])
      const newId = (out[1] as { id: string }).id
      const job = await backend.jobs.view('job-2')
      assert.deepEqual([job?.done, job?.indexed, job?.duplicate, job?.failed], [3, 1, 2, 0])
      assert.deepEqual(job?.duplicates, [{ item: 'four.png', id: 'img-4' }, { item: 'new-again.png', id: newId }])
      await backend.images.remove(newId)
    })

    it('stores what it was given: record, thumbnail, embedding, hashes and ids', async () => {
      const thumb = Buffer.from('RIFF\u0000\u0000\u0000\u0000WEBPVP8 thumbnail bytes')
      const row = { ...pool.extra(3), thumbnail: thumb, source: 'holiday/beach.webp' }
      const [out] = await backend.images.add([row])
      assert.deepEqual(out, { status: 'indexed', id: row.id })
      const rec = await backend.images.get(row.id)
      assert.deepEqual({ ...rec, createdAt: undefined }, { id: row.id, sha256: row.sha256, width: row.width, height: row.height, metadata: row.metadata, source: 'holiday/beach.webp', createdAt: undefined })
      assert.equal((await backend.images.search(row.embedding, { k: 1 }))[0]?.source, 'holiday/beach.webp', 'hits carry the source')
      assert.equal((await backend.images.get(pool.rows[0]!.id))?.source, null, 'none recorded: null')
      assert.ok(!Number.isNaN(Date.parse(rec!.createdAt)))
      assert.deepEqual(await backend.images.thumbnail(row.id), thumb)
      assert.deepEqual(await backend.images.embedding(row.id), row.embedding, 'float32 values come back bit for bit')
      assert.deepEqual(await backend.images.idsBySha([row.sha256, 'f'.repeat(64)]), new Map([[row.sha256, row.id]]))
      assert.deepEqual(await backend.images.existingIds([row.id, 'nope']), new Set([row.id]))
      assert.equal(await backend.images.get('nope'), undefined)
      assert.equal(await backend.images.thumbnail(pool.rows[0]!.id), undefined, 'no thumbnail stored')
      assert.equal(await backend.images.remove(row.id), true)
    })

    it('finds the nearest rows best first, with exact cosine scores and stored embeddings on request', async () => {
      const target = pool.rows[123]!
      const hits = await backend.images.search(target.embedding, { k: 10, withEmbeddings: true })
      assert.equal(hits.length, 10)
      assert.equal(hits[0]?.id, target.id)
      assert.ok(Math.abs(hits[0]!.score - 1) < 1e-5)
      for (let i = 1; i < hits.length; i++) assert.ok(hits[i - 1]!.score >= hits[i]!.score, 'best first')
      for (const h of hits) {
        const row = pool.byId.get(h.id)!
        assert.deepEqual(h.embedding, row.embedding)
        assert.ok(Math.abs(h.score - cosine(row.embedding, target.embedding)) < 1e-5, 'the score is the cosine')
      }
      const exact = exactNearest(pool.live(), target.embedding, 10).map((r) => r.id)
      assert.ok(recall(hits.map((h) => h.id), exact) >= 0.9)
    })

    it('a selective filter (1 row in 50 matches) still returns k, the nearest matching rows', async () => {
      const rare = pool.live().filter((r) => r.metadata.group === 'rare')
      assert.equal(rare.length, pool.rows.length / 50)
      const q = pool.query(3)
      const exact = exactSearches(backend)
      const hits = await backend.images.search(q, { k: 10, filter: { group: 'rare' } })
      assert.equal(hits.length, 10)
      assert.ok(hits.every((h) => h.metadata.group === 'rare'))
      assert.deepEqual(hits.map((h) => h.id), exactNearest(rare, q, 10).map((r) => r.id), '100 matches: scored exactly')
      assert.equal(exactSearches(backend), exact + 1, 'the planner counted 100 matches and took the exact path')
      const twoKeys = await backend.images.search(q, { k: 10, filter: { group: 'rare', cluster: 0 } })
      assert.ok(twoKeys.every((h) => h.metadata.group === 'rare' && h.metadata.cluster === 0))
      assert.deepEqual(await backend.images.search(q, { k: 10, filter: { group: 'none' } }), [])
      const few = pool.live().filter((r) => r.metadata.group === 'rare' && r.metadata.cluster === 1).map((r) => r.id).sort()
      assert.ok(few.length > 0 && few.length < 10)
      const all = await backend.images.search(q, { k: 10, filter: { group: 'rare', cluster: 1 } })
      assert.deepEqual(all.map((h) => h.id).sort(), few, 'fewer than k match: every one of them comes back')
    })

    it('every operator at 1% selectivity returns the k nearest matching rows, scored exactly over the matches alone', async () => {
      const q = pool.query(4)
      const live = pool.live()
      const filters: Array<Record<string, unknown>> = [
        { i: { $lt: 50 } },
        { i: { $gte: 1000, $lte: 1049 } },
        { i: { $in: Array.from({ length: 50 }, (_, n) => n * 100) } },
        { group: 'rare', i: { $lt: 2500 } },
        { $or: [{ i: { $lt: 25 } }, { i: { $gt: 4974 } }] },
        { $and: [{ group: { $ne: 'common' } }, { cluster: { $nin: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] } }] },
        { group: { $eq: 'rare' }, nope: { $exists: false }, cluster: { $exists: true }, i: { $gt: 2000 } }
      ]
      for (const filter of filters) {
        const node = parseFilter(filter)!
        const matching = live.filter((r) => matchesFilter(r.metadata, node))
        assert.ok(matching.length >= 10 && matching.length <= live.length / 50, `${JSON.stringify(filter)}: ${matching.length} rows match`)
        const exact = exactSearches(backend)
        const hits = await backend.images.search(q, { k: 10, filter })
        assert.deepEqual(hits.map((h) => h.id), exactNearest(matching, q, 10).map((r) => r.id), JSON.stringify(filter))
        assert.equal(exactSearches(backend), exact + 1, 'few matches: the exact path')
      }
    })

    it('excludeIds: excluding the 100 nearest still returns k others', async () => {
      const q = pool.query(5)
      const nearest = exactNearest(pool.live(), q, 100).map((r) => r.id)
      const walks = walkThenExact(backend)
      const hits = await backend.images.search(q, { k: 10, excludeIds: nearest })
      assert.equal(hits.length, 10)
      assert.ok(!hits.some((h) => nearest.includes(h.id)))
      assert.ok(recall(hits.map((h) => h.id), exactNearest(pool.live().filter((r) => !nearest.includes(r.id)), q, 10).map((r) => r.id)) >= 0.9)
      assert.equal(walkThenExact(backend), walks, 'found by the walk, no exact second pass')
    })

    it('minScore drops hits below it, after the k nearest are found', async () => {
      const q = pool.query(2)
      const all = await backend.images.search(q, { k: 10 })
      const cut = all[4]!.score
      const above = await backend.images.search(q, { k: 10, minScore: cut })
      assert.ok(above.length >= 5 && above.length < 10, `${above.length} hits at or above ${cut}`)
      assert.ok(above.every((h) => h.score >= cut))
      assert.equal((await backend.images.search(q, { k: 10, minScore: 1.01 })).length, 0)
    })

    it('a delete is final: k results still come back without it, and a second instance does not see it either', async (t) => {
      const q = pool.query(1)
      const first = await backend.images.search(q, { k: 5 })
      assert.equal(first.length, 5)
      for (const h of first.slice(0, 3)) assert.equal(await backend.images.remove(h.id), true)
      pool.removed(first.slice(0, 3).map((h) => h.id))
      const next = await backend.images.search(q, { k: 5 })
      assert.equal(next.length, 5)
      for (const h of first.slice(0, 3)) assert.ok(!next.some((n) => n.id === h.id))
      assert.equal(await backend.images.remove(first[0]!.id), false)
      assert.equal(await backend.images.get(first[0]!.id), undefined)
      if (subject.noSecondInstance !== undefined) {
        t.skip(subject.noSecondInstance)
        return
      }
      const other = await subject.open()
      try {
        const seen = await other.images.search(q, { k: 5 })
        assert.equal(seen.length, 5)
        for (const h of first.slice(0, 3)) assert.ok(!seen.some((n) => n.id === h.id))
        // and the other way round: its delete is gone here at once
        assert.equal(await other.images.remove(seen[0]!.id), true)
        pool.removed([seen[0]!.id])
        assert.ok(!(await backend.images.search(q, { k: 5 })).some((h) => h.id === seen[0]!.id))
      } finally {
        await other.close()
      }
    })

    it('keeps a text pool: dedupe, id conflicts refused atomically, search with text and filter', async () => {
      const texts = pool.texts(40)
      const out = await backend.texts.add(texts)
      assert.ok(out.every((o) => o.status === 'indexed'))
      assert.deepEqual(await backend.texts.add([{ ...texts[0]!, id: undefined }]), [{ status: 'duplicate', id: texts[0]!.id }])
      const extra = pool.texts(42).slice(40)
      await assert.rejects(backend.texts.add([extra[0]!, { ...extra[1]!, id: texts[1]!.id }]), (err: Error) => err instanceof ConflictError && /already used by another text/.test(err.message))
      assert.equal(await backend.texts.count(), 40, 'a refused batch stores nothing')
      const hits = await backend.texts.search(texts[7]!.embedding, { k: 3 })
      assert.equal(hits[0]?.id, texts[7]!.id)
      assert.equal(hits[0]?.text, texts[7]!.text)
      const odd = await backend.texts.search(texts[7]!.embedding, { k: 5, filter: { parity: 'odd' } })
      assert.equal(odd.length, 5)
      assert.ok(odd.every((h) => h.metadata.parity === 'odd'))
      assert.equal(await backend.texts.remove(texts[7]!.id), true)
      assert.equal((await backend.texts.search(texts[7]!.embedding, { k: 3 }))[0]?.id === texts[7]!.id, false)
    })

    it('lists rows page by page after a cursor, with an exact-match filter, each row once', async () => {
      const texts = pool.texts(30).slice(0, 30)
      await backend.texts.add(texts.map((t) => ({ ...t, sha256: `list-${t.sha256}`.slice(0, 64), id: `list-${t.id}`, metadata: { ...t.metadata, listing: true } })))
      const seen: string[] = []
      let after: string | undefined
      for (let pages = 0; pages < 20; pages++) {
        const page = await backend.texts.list({ limit: 7, filter: { listing: true }, ...(after === undefined ? {} : { after }) })
        assert.ok(page.every((r) => r.metadata.listing === true && typeof r.text === 'string' && typeof r.createdAt === 'string'))
        seen.push(...page.map((r) => r.id))
        if (page.length < 7) break
        after = page.at(-1)!.id
      }
      assert.equal(new Set(seen).size, seen.length, 'a row came twice')
      assert.deepEqual([...seen].sort(), texts.map((t) => `list-${t.id}`).sort())
      const odd = await backend.texts.list({ limit: 100, filter: { listing: true, parity: 'odd' } })
      assert.deepEqual(odd.map((r) => r.id).sort(), texts.filter((t) => t.metadata.parity === 'odd').map((t) => `list-${t.id}`).sort())
    })

    it('keeps job rows: items, expansion, pending, completion counted once, status, errors, newest-first pages', async () => {
      await backend.jobs.create({ id: 'job-dir', kind: 'directory', source: { directory: 'photos' }, root: '/import/photos' })
      const dir = await backend.jobs.get('job-dir')
      assert.deepEqual([dir?.kind, dir?.status, dir?.expanded, dir?.total, dir?.cleanup, dir?.root], ['directory', 'queued', false, 0, false, '/import/photos'])
      assert.deepEqual(dir?.source, { directory: 'photos' })
      const items = Array.from({ length: 7 }, (_, i) => ({ path: `p${i}.jpg`, ...(i === 2 ? { id: 'given', metadata: { a: 1 }, name: 'second' } : {}) }))
      assert.equal(await backend.jobs.expand('job-dir', items), true)
      // a second listing (a plan delivered twice) changes nothing: progress made since is never reset
      assert.equal(await backend.jobs.expand('job-dir', items.slice(0, 3)), false)
      assert.deepEqual([(await backend.jobs.get('job-dir'))?.expanded, (await backend.jobs.get('job-dir'))?.total], [true, 7])
      assert.deepEqual(await backend.jobs.pending('job-dir', 3), items.slice(0, 3).map((item, seq) => ({ seq, item })))
      const progress = { jobId: 'job-dir', outcomes: [{ seq: 0, item: 'p0.jpg', status: 'failed' as const, error: 'unreadable' }, { seq: 1, item: 'p1.jpg', status: 'duplicate' as const, id: 'img-1' }] }
      await backend.jobs.complete(progress)
      await backend.jobs.complete(progress) // a replay after a crash counts nothing twice
      const view = await backend.jobs.view('job-dir')
      assert.deepEqual([view?.done, view?.indexed, view?.duplicate, view?.failed], [1, 0, 1, 1])
      assert.deepEqual([view?.errors, view?.duplicates], [[{ item: 'p0.jpg', error: 'unreadable' }], [{ item: 'p1.jpg', id: 'img-1' }]])
      assert.deepEqual((await backend.jobs.pending('job-dir', 100)).map((p) => p.seq), [2, 3, 4, 5, 6])
      assert.deepEqual((await backend.jobs.pending('job-dir', 2, 3)).map((p) => p.seq), [4, 5], 'a batch range: pending after seq 3')
      await backend.jobs.addError('job-dir', { item: 'photos', error: 'listing stopped' })
      assert.equal((await backend.jobs.view('job-dir'))?.errors.length, 2)

      assert.deepEqual((await backend.jobs.unfinished()).map((j) => j.id), ['job-1', 'job-2', 'job-dir'], 'queued and running, oldest first')
      await backend.jobs.setStatus('job-dir', 'running')
      assert.equal(await backend.jobs.setStatusUnlessTerminal('job-dir', 'cancelled'), true)
      assert.equal(await backend.jobs.setStatusUnlessTerminal('job-dir', 'running'), false, 'a cancelled job stays cancelled')
      assert.equal((await backend.jobs.view('job-dir'))?.status, 'cancelled')
      assert.equal(await backend.jobs.setStatusUnlessTerminal('nope', 'running'), false)
      assert.equal(await backend.jobs.view('nope'), undefined)

      for (let i = 0; i < 4; i++) await backend.jobs.create({ id: `job-page-${i}`, kind: 'upload', source: { upload: 0 }, root: `/staged/${i}`, cleanup: true, items: [] })
      const newest = ['job-page-3', 'job-page-2', 'job-page-1', 'job-page-0', 'job-dir', 'job-2', 'job-1']
      const page1 = await backend.jobs.list({ limit: 4 })
      assert.deepEqual(page1.map((j) => j.id), newest.slice(0, 4))
      const page2 = await backend.jobs.list({ limit: 4, before: page1.at(-1)!.id })
      assert.deepEqual(page2.map((j) => j.id), newest.slice(4))
      assert.deepEqual(await backend.jobs.list({ limit: 4, before: 'nope' }), [])
      assert.equal((await backend.jobs.get('job-page-0'))?.cleanup, true)
    })

    it('a directory job keeps what its listing skipped; one with no images carries a warning', async () => {
      await backend.jobs.create({ id: 'job-skips', kind: 'directory', source: { directory: 'notes' }, root: '/import/notes' })
      const skipped = { notImage: 2, unreadable: 1, paths: [{ path: 'notes/a.txt', reason: 'not an image' as const }, { path: 'notes/b', reason: 'not an image' as const }, { path: 'notes/c.png', reason: 'unreadable' as const }] }
      await backend.jobs.expand('job-skips', [], skipped)
      await backend.jobs.setStatus('job-skips', 'done') // a finished job, as the runner leaves it (the next test counts unfinished ones)
      const view = await backend.jobs.view('job-skips')
      assert.deepEqual(view?.skipped, skipped)
      assert.equal(view?.warning, 'the folder holds no images: nothing was indexed (2 not an image by extension, 1 unreadable; e.g. notes/a.txt, notes/b, notes/c.png)')
    })

    it('stages job uploads for every process: stored together, read by path, removed with a finished job', async (t) => {
      const staging = backend.staging
      if (staging === undefined) { t.skip('the embedded backend stages uploads on its own disk (jobs/staging.ts)'); return }
      const files = [{ path: '00000-a.png', bytes: Buffer.from('aaa') }, { path: '00001-b.png', bytes: Buffer.alloc(70_000, 7) }]
      await staging.put('staged-1', files)
      await staging.put('staged-2', files.slice(0, 1))
      assert.deepEqual(await staging.read('staged-1', ['00001-b.png', 'nope.png', '00000-a.png']), [files[1]!.bytes, undefined, files[0]!.bytes])
      await backend.jobs.create({ id: 'staged-1', kind: 'upload', source: { upload: 0 }, root: 'staged', cleanup: true, items: [] })
      await backend.jobs.create({ id: 'staged-2', kind: 'upload', source: { upload: 0 }, root: 'staged', cleanup: true, items: [] })
      await backend.jobs.setStatus('staged-1', 'done')
      // staged-2 runs; a job not created yet (its API is between staging and creating it) is young: both kept
      await staging.put('staged-3', files.slice(0, 1))
      assert.equal(await staging.removeFinished(), 1)
      assert.deepEqual(await staging.read('staged-1', ['00000-a.png']), [undefined])
      assert.deepEqual(await staging.read('staged-3', ['00000-a.png']), [files[0]!.bytes])
      await staging.remove('staged-2')
      assert.deepEqual(await staging.read('staged-2', ['00000-a.png']), [undefined])
      await staging.remove('staged-3')
    })

    it('keeps small settings beside the data, reports its index and its health', async () => {
      assert.equal(await backend.getMeta('demo_job'), undefined)
      await backend.setMeta('demo_job', 'a')
      await backend.setMeta('demo_job', 'b')
      assert.equal(await backend.getMeta('demo_job'), 'b')
      const info = backend.indexInfo()
      assert.deepEqual([info.M, info.efConstruction, info.efSearch], [16, 200, 64])
      if (backend.name === 'postgres') {
        assert.equal(info.kind, 'pgvector hnsw (vector)')
        assert.equal(info.capacity, null)
      } else {
        assert.equal(info.kind, 'hnswlib')
        assert.ok(info.capacity !== null && info.capacity >= await backend.images.count())
      }
      assert.deepEqual(await backend.health(), { ok: true })
    })

    it('keeps everything across a restart, and refuses another model or dimension', async () => {
      const images = await backend.images.count()
      const texts = await backend.texts.count()
      const jobs = await backend.jobs.list({ limit: 10 })
      await backend.close()
      await assert.rejects(subject.open({ modelId: 'other', dim: DIM }), (err: Error) => err instanceof ConflictError && /built with model test-model \(dim 16\)/.test(err.message))
      await assert.rejects(subject.open({ modelId: 'test-model', dim: 8 }), /built with model test-model \(dim 16\); this server runs test-model \(dim 8\)/)
      backend = await subject.open()
      assert.equal(await backend.images.count(), images)
      assert.equal(await backend.texts.count(), texts)
      const q = pool.query(4)
      const hits = await backend.images.search(q, { k: 10 })
      assert.ok(recall(hits.map((h) => h.id), exactNearest(pool.live(), q, 10).map((r) => r.id)) >= 0.9)
      assert.deepEqual(await backend.jobs.list({ limit: 10 }), jobs)
      assert.equal(await backend.getMeta('demo_job'), 'b')
      assert.equal((await backend.jobs.view('job-1'))?.done, 2)
    })

    if (subject.name.startsWith('SQLite')) {
      it('hnswlib: a delete leaves the in-memory index (its size goes down)', async () => {
        const sqlite = backend as SqliteBackend
        const size = sqlite.images.index.size
        const id = (await sqlite.images.search(pool.query(6), { k: 1 }))[0]!.id
        assert.equal(await sqlite.images.remove(id), true)
        pool.removed([id])
        assert.equal(sqlite.images.index.size, size - 1)
      })
    } else {
      it('halfvec: PG_VECTOR_TYPE alone changes nothing (the database\'s index is followed); db:reindex switches it, and scores stay exact', async () => {
        await backend.close()
        backend = await subject.open(identity, { vectorType: 'halfvec' })
        assert.equal(backend.indexInfo().kind, 'pgvector hnsw (vector)', 'a process set otherwise follows the database')
        const pg = backend as PostgresBackend
        const c = await pg.pool.connect()
        try {
          const { M, efConstruction } = pg.indexInfo()
          assert.equal(await reindex(c, { vectorType: 'halfvec', M, efConstruction }, { graceMs: 0 }), true)
        } finally {
          c.release()
        }
        await backend.close()
        backend = await subject.open(identity, { vectorType: 'halfvec' })
        assert.equal(backend.indexInfo().kind, 'pgvector hnsw (halfvec)')
        assert.equal(backend.indexInfo().settingsIgnored, undefined)
        const q = pool.query(8)
        const hits = await backend.images.search(q, { k: 10 })
        assert.equal(hits.length, 10)
        assert.ok(recall(hits.map((h) => h.id), exactNearest(pool.live(), q, 10).map((r) => r.id)) >= 0.9)
        for (const h of hits) assert.ok(Math.abs(h.score - cosine(pool.byId.get(h.id)!.embedding, q)) < 1e-5, 'ordered and scored in float32')
        const rare = await backend.images.search(q, { k: 10, filter: { group: 'rare' } })
        assert.equal(rare.length, 10)
      })
    }
  })
}

/** how many filtered searches the planner scored exactly over the filter's matches */
function exactSearches (backend: Backend): number {
  return backend instanceof PostgresBackend ? backend.images.counters.exact : (backend as SqliteBackend).images.paths.exact
}

/** how many walks stopped short of k and were redone exactly */
function walkThenExact (backend: Backend): number {
  return backend instanceof PostgresBackend ? backend.images.counters.walkThenExact : (backend as SqliteBackend).images.paths.walkThenExact
}

function recall (got: string[], want: string[]): number {
  const w = new Set(want)
  return got.filter((id) => w.has(id)).length / want.length
}
