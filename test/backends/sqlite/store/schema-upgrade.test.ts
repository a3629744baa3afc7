/** A DATA_DIR written by an older schema is upgraded in place when it is opened. */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import Database from 'better-sqlite3'
import { openSqliteBackend } from '../../../../src/backends/sqlite/open-sqlite-backend.js'
import { ConflictError } from '../../../../src/core/errors.js'
import { DB_FILE, openStore } from '../../../../src/backends/sqlite/store/index.js'
import { SCHEMA_VERSION } from '../../../../src/backends/sqlite/store/schema.js'
import { TIMEOUT } from '../../../helpers/timeouts.js'

const V1_DUMP = readFileSync(path.resolve('test/fixtures/schema-v1.sql'), 'utf8')
const identity = { modelId: 'schema-v1-fixture', dim: 4 }

const root = mkdtempSync(path.join(tmpdir(), 'schema-upgrade-'))
after(() => { rmSync(root, { recursive: true, force: true }) })
let n = 0

/** a DATA_DIR holding the schema-1 database of test/fixtures/schema-v1.sql */
function v1DataDir (): string {
  const dir = path.join(root, `d${++n}`)
  mkdirSync(dir)
  const db = new Database(path.join(dir, DB_FILE))
  db.exec(V1_DUMP)
  db.close()
  return dir
}

function storedVersion (dir: string): string | undefined {
  const db = new Database(path.join(dir, DB_FILE), { readonly: true })
  try {
    return (db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string } | undefined)?.value
  } finally { db.close() }
}

describe('schema upgrade', { timeout: TIMEOUT.unit }, () => {
  it('the fixture really is schema 1, and this code reads schema 4', () => {
    assert.equal(storedVersion(v1DataDir()), '1')
    assert.equal(SCHEMA_VERSION, 4)
  })

  it('upgrades a schema-1 DATA_DIR in place: old rows are kept with no source, new rows store one', () => {
    const dir = v1DataDir()
    const store = openStore(dir, identity)
    assert.equal(store.getMeta('schema_version'), '4')
    const red = store.images.get('old-red')
    assert.deepEqual({ ...red, createdAt: undefined }, {
      id: 'old-red', sha256: 'a'.repeat(64), width: 2, height: 2, metadata: { album: 'old' }, source: null, createdAt: undefined
    })
    assert.deepEqual([...store.images.embedding('old-blue')!], [0, 1, 0, 0])
    assert.equal(store.images.thumbnail('old-red')?.toString(), 'RIFF-old-red')
    // schema 3: old images have no preview or original (a model switch reads their source or counts them), and no standby model exists
    assert.deepEqual(store.images.forReembed(['old-red']).map((r) => [r.preview, r.original, r.source]), [[null, null, null]])
    assert.equal(store.images.weak(64).length, 2, 'both old images lack a preview large enough for a 64 px model')
    assert.equal(store.standby, undefined)
    // a job counted before the upgrade keeps its done; the split was not recorded then
    const job = store.jobs.view('old-job')
    assert.deepEqual([job?.done, job?.indexed, job?.duplicate, job?.failed, job?.duplicates], [2, 0, 0, 0, []])
    // the labels and seq counters carry on from where schema 1 left them
    const ref = store.transaction(() => store.images.insert({
      id: 'new-green', sha256: 'c'.repeat(64), width: 1, height: 1, metadata: {}, embedding: new Float32Array([0, 0, 1, 0]), thumbnail: null, source: 'holiday/green.png'
    }))
    assert.deepEqual(ref, { label: 2, seq: 3 })
    assert.equal(store.images.get('new-green')?.source, 'holiday/green.png')
    store.close()

    // opening again changes nothing
    const again = openStore(dir, identity)
    assert.equal(again.getMeta('schema_version'), '4')
    assert.equal(again.images.get('new-green')?.source, 'holiday/green.png')
    assert.equal(again.images.count(), 3)
    again.close()
  })

  it('the backend serves an upgraded DATA_DIR: old images are found, with source null', async () => {
    const dir = v1DataDir()
    const backend = await openSqliteBackend({ dataDir: dir }, identity)
    try {
      const hits = await backend.images.search(new Float32Array([1, 0, 0, 0]), { k: 2 })
      assert.deepEqual(hits.map((h) => [h.id, h.source]), [['old-red', null], ['old-blue', null]])
      const [added] = await backend.images.add([{ sha256: 'd'.repeat(64), width: 1, height: 1, metadata: {}, embedding: new Float32Array([0, 0, 0, 1]), thumbnail: null, source: 'x/y.png' }])
      assert.equal(added?.status, 'indexed')
      const [hit] = await backend.images.search(new Float32Array([0, 0, 0, 1]), { k: 1 })
      assert.deepEqual([hit?.id, hit?.source], [added?.id, 'x/y.png'])
      assert.equal((await backend.images.get(added!.id))?.source, 'x/y.png')
    } finally {
      await backend.close()
    }
  })

  it('tags the demo pool already stored {"demo": true} (its job\'s images, its labels) and gives its labels their own key', async () => {
    const dir = v1DataDir()
    const db = new Database(path.join(dir, DB_FILE))
    // as a first start recorded it: old-red came from the demo job, "cat" is a demo label, "mine" a user's text
    db.exec(`
      INSERT INTO meta (key, value) VALUES ('demo_pool_job', 'demo-job');
      INSERT INTO jobs (id, kind, status, source, root, total, done, errors, created_at, updated_at)
        VALUES ('demo-job', 'items', 'done', '{"demoPool":"/demo"}', '/demo', 1, 1, '[]', '2026-12-02T13:12:12.766Z', '2026-12-02T13:12:12.766Z');
      INSERT INTO job_items (job_id, seq, item, status) VALUES ('demo-job', 0, '{"path":"red.png","id":"old-red"}', 'done');
      INSERT INTO texts (id, label, seq, text, sha256, metadata, embedding, created_at)
        VALUES ('t-cat', 0, 3, 'cat', '${'c'.repeat(64)}', '{"label":"cat"}', X'0000803f000000000000000000000000', '2026-12-02T13:12:12.766Z'),
               ('t-mine', 1, 4, 'my cat', '${'e'.repeat(64)}', '{}', X'000000000000803f0000000000000000', '2026-12-02T13:12:12.766Z');
      UPDATE meta SET value = '2' WHERE key = 'next_label:texts';
      UPDATE meta SET value = '4' WHERE key = 'seq';`)
    db.close()
    const backend = await openSqliteBackend({ dataDir: dir }, identity)
    try {
      assert.deepEqual((await backend.images.list({ limit: 10, filter: { demo: true } })).map((r) => r.id), ['old-red'])
      assert.deepEqual((await backend.images.get('old-blue'))?.metadata, {})
      assert.deepEqual((await backend.texts.list({ limit: 10 })).map((r) => [r.id, r.metadata]), [['t-cat', { label: 'cat', demo: true }], ['t-mine', {}]])
      // the demo label no longer holds the plain text's key: a user's plain "cat" is its own entry
      assert.deepEqual([...(await backend.texts.idsBySha(['c'.repeat(64), 'e'.repeat(64)])).keys()], ['e'.repeat(64)])
      assert.equal((await backend.jobs.view('old-job'))?.skipped.notImage, 0)
    } finally {
      await backend.close()
    }
  })

  it('refuses a DATA_DIR written by a newer schema, and leaves it as it was', () => {
    const dir = v1DataDir()
    const db = new Database(path.join(dir, DB_FILE))
    db.prepare("UPDATE meta SET value = '99' WHERE key = 'schema_version'").run()
    db.close()
    assert.throws(() => openStore(dir, identity), (err: Error) => {
      assert.ok(err instanceof ConflictError)
      assert.match(err.message, /newer align-search \(schema 99, this one reads 4\)/)
      return true
    })
    assert.equal(storedVersion(dir), '99')
    const check = new Database(path.join(dir, DB_FILE), { readonly: true })
    const columns = (check.prepare('PRAGMA table_info(images)').all() as Array<{ name: string }>).map((c) => c.name)
    check.close()
    assert.ok(!columns.includes('source'), 'a newer database is not altered')
  })
})
