/**
 * What only the PostgreSQL backend promises, beyond the shared contract (contract.test.ts): many
 * processes start on one database at once, a server without a usable pgvector is refused with the
 * fix named, a server that goes away and comes back is survived, concurrent writers of the same
 * content agree on one row, a walk of the HNSW index that stops short of k falls back to exact, and
 * the search planner's statements use the intended indexes (EXPLAIN).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { after, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { runner } from 'node-pg-migrate'
import pg from 'pg'
import { openBackend } from '../../src/main/wiring/open-backend.js'
import { MIGRATIONS_DIR, MIGRATIONS_TABLE } from '../../src/backends/postgres/migrate.js'
import { openPostgresBackend, type PostgresBackend } from '../../src/backends/postgres/open-postgres-backend.js'
import { mapDiskFull } from '../../src/backends/postgres/pg-pool.js'
import { countStatement, EXACT_MAX_MATCHES, exactCutoff, exactSettings, plannedStatement, searchNearest, searchSettings, searchStatement } from '../../src/backends/postgres/pg-vector-search.js'
import { matchesFilter, parseFilter } from '../../src/core/metadata-filter.js'
import { compareVersions, VectorExtensionError, vectorVersionProblem } from '../../src/backends/postgres/vector-extension.js'
import { loadConfig } from '../../src/main/config/config.js'
import { BackendUnavailableError, StorageFullError } from '../../src/core/errors.js'
import type { Logger } from '../../src/core/types.js'
import { startTestPostgres, type TestPostgres, type TestPostgresResult } from '../../scripts/lib/postgres-server.js'
import { TIMEOUT } from '../helpers/timeouts.js'
import { DIM, exactNearest, Pool } from '../helpers/vectors.js'

const identity = { modelId: 'test-model', dim: DIM }
const server = await startTestPostgres({ engine: 'server' })
const lite = await startTestPostgres({ engine: 'pglite' })
after(async () => {
  if ('url' in server) await server.stop()
  if ('url' in lite) await lite.stop()
})

/** the skip option of a test that needs `what` of a database; undefined when it can run */
function needs (db: TestPostgresResult, what: 'a server' | 'our own cluster'): { skip: string } | Record<string, never> {
  if (!('url' in db)) return { skip: db.skip }
  if (what === 'our own cluster' && db.kind !== 'cluster') return { skip: `needs a throwaway cluster of its own to add roles to, not ${db.kind}` }
  return {}
}

/** `pool`'s rows stored in calls of 1,000, then the planner's statistics taken */
async function storeAnalyzed (backend: PostgresBackend, pool: Pool): Promise<void> {
  for (let i = 0; i < pool.rows.length; i += 1000) await backend.images.add(pool.rows.slice(i, i + 1000))
  await backend.pool.query('ANALYZE images; ANALYZE images_metadata_keys')
}

/** a logger that keeps what it was told */
function recordingLogger (): Logger & { lines: Array<{ level: string, msg: string, obj: unknown }> } {
  const lines: Array<{ level: string, msg: string, obj: unknown }> = []
  const at = (level: string) => (obj: unknown, msg?: string) => { lines.push({ level, obj, msg: msg ?? String(obj) }) }
  const logger = { lines, info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug'), child: () => logger }
  return logger as unknown as Logger & { lines: typeof lines }
}

describe('PostgreSQL backend: refusals with the fix named', () => {
  it('refuses a server without pgvector or older than 0.7, naming the fix', () => {
    assert.match(vectorVersionProblem(undefined, 'db') ?? '', /no "vector" extension: .*scripts\/install-postgres\.sh.*CREATE EXTENSION vector/)
    assert.match(vectorVersionProblem('0.6.2', 'db') ?? '', /pgvector 0\.6\.2; align-search needs 0\.7\.0 or newer: .*ALTER EXTENSION vector UPDATE/)
    for (const ok of ['0.7.0', '0.8.0', '0.8.7', '0.10.1', '1.0.0']) assert.equal(vectorVersionProblem(ok, 'db'), undefined, ok)
    assert.ok(compareVersions('0.10.0', '0.9.0') > 0, 'versions compare by number, not as text')
  })

  it('a full disk on the server answers 507 like SQLite\'s', () => {
    const full = Object.assign(new pg.DatabaseError('could not extend file "base/16384/16397": No space left on device', 0, 'error'), { code: '53100' })
    const mapped = mapDiskFull(full)
    assert.ok(mapped instanceof StorageFullError, String(mapped))
    assert.match((mapped as Error).message, /out of disk space/)
    const other = Object.assign(new pg.DatabaseError('deadlock detected', 0, 'error'), { code: '40P01' })
    assert.equal(mapDiskFull(other), other)
  })

  it('a real server without the extension is refused at start with the fix named (PGlite without pgvector)', { timeout: TIMEOUT.server }, async (t) => {
    const bare = await startTestPostgres({ engine: 'pglite', vector: false })
    if (!('url' in bare)) { t.skip(bare.skip); return }
    try {
      await assert.rejects(openPostgresBackend({ databaseUrl: bare.url, poolSize: 1 }, identity),
        (err: Error) => err instanceof VectorExtensionError && /scripts\/install-postgres\.sh/.test(err.message) && /CREATE EXTENSION vector/.test(err.message))
    } finally {
      await bare.stop()
    }
  })

  it('a role that may not create the extension is refused with the fix named', { timeout: TIMEOUT.server, ...needs(server, 'our own cluster') }, async () => {
    const db = server as TestPostgres
    const admin = new pg.Client({ connectionString: db.url })
    await admin.connect()
    try {
      await admin.query("CREATE ROLE plain LOGIN PASSWORD 'plain'")
      await admin.query('CREATE DATABASE plain_db OWNER plain')
    } finally {
      await admin.end()
    }
    const u = new URL(db.url)
    u.username = 'plain'
    u.password = 'plain'
    u.pathname = '/plain_db'
    await assert.rejects(openPostgresBackend({ databaseUrl: u.toString(), poolSize: 1 }, identity),
      (err: Error) => err instanceof VectorExtensionError && /ask a superuser to run CREATE EXTENSION vector; in plain@/.test(err.message) && !err.message.includes(':plain@'))
  })
})

for (const [name, db] of [['PostgreSQL', server], ['PGlite', lite]] as const) {
  describe(`PostgreSQL backend on ${name}${'url' in db ? ` (${db.kind})` : ''}`, { timeout: TIMEOUT.server, ...needs(db, 'a server') }, () => {
    it('a filtered walk that stops short of k (no iterative scan, as on pgvector 0.7) takes the exact path and still returns k', async (t) => {
      if (!('url' in db) || !db.multiConnection) { t.skip('needs a fresh database of its own (PGlite serves one)'); return }
      const backend = await openPostgresBackend({ databaseUrl: await db.newDatabase(), poolSize: 1 }, { modelId: 'walk-model', dim: 8 })
      try {
        const pool = new Pool(6000, 20, 3, 8)
        for (let i = 0; i < pool.rows.length; i += 1000) await backend.images.add(pool.rows.slice(i, i + 1000))
        const settings = backend.images.settings
        settings.iterativeScan = false // as on pgvector 0.7
        settings.exactMaxMatches = 100 // so that 3000 matches walk
        await backend.pool.query('ANALYZE images; ANALYZE images_metadata_keys')
        const q = pool.query(0)
        const opts = { k: 50, filter: { i: { $gte: 3000 } } }
        // the precondition that makes this test mean something: PostgreSQL's planner walks the HNSW index for this statement
        const plan = await withTransaction(backend, `BEGIN; ${searchSettings(settings, opts)}`, async (c) => {
          const st = searchStatement(settings, q, opts)
          return (await c.query<{ 'QUERY PLAN': string }>({ text: `EXPLAIN ${st.text}`, values: st.values })).rows.map((r) => r['QUERY PLAN']).join('\n')
        })
        assert.match(plan, /Index Scan using images_embedding_vector_hnsw/)
        const counters = { ...backend.images.counters }
        const hits = await backend.images.search(q, opts)
        assert.equal(backend.images.counters.walk, counters.walk + 1, 'the planner walked: 3000 matches > 100')
        assert.equal(backend.images.counters.walkThenExact, counters.walkThenExact + 1, 'the walk met ef_search (50) candidates, about half of them matching')
        assert.deepEqual(hits.map((h) => h.id), exactNearest(pool.rows.filter((r) => (r.metadata.i as number) >= 3000), q, 50).map((r) => r.id))
      } finally {
        await backend.close()
      }
    })

    it('EXPLAIN: a plain search walks the HNSW index; a selective filter reads its matches through the metadata indexes, never the HNSW index nor the whole table', async (t) => {
      if (!('url' in db) || !db.multiConnection) { t.skip('needs a fresh database of its own (PGlite serves one)'); return }
      const backend = await openPostgresBackend({ databaseUrl: await db.newDatabase(), poolSize: 1 }, { modelId: 'plan-model', dim: 8 })
      try {
        const pool = new Pool(6000, 20, 5, 8)
        await storeAnalyzed(backend, pool)
        const settings = backend.images.settings
        const q = pool.query(1)
        const explain = async (begin: string, st: { text: string, values: unknown[] }, analyze = false): Promise<string> =>
          await withTransaction(backend, begin, async (c) => (await c.query<{ 'QUERY PLAN': string }>({ text: `EXPLAIN ${analyze ? '(ANALYZE, COSTS OFF) ' : ''}${st.text}`, values: st.values })).rows.map((r) => r['QUERY PLAN']).join('\n'))
        const plain = await explain('BEGIN', searchStatement(settings, q, { k: 10 }))
        assert.match(plain, /Index Scan using images_embedding_vector_hnsw/)
        assert.doesNotMatch(plain, /Seq Scan/)
        // 1% exact-match filter (group "rare": 120 rows), and a 1% range: both exact, through their indexes
        for (const [filter, index] of [[{ group: 'rare' }, /Bitmap Index Scan on images_metadata\b/], [{ i: { $lt: 60 } }, /images_metadata_keys_num/]] as const) {
          const opts = { k: 10, filter }
          const matches = pool.rows.filter((r) => matchesFilter(r.metadata, parseFilter(filter)!)).length
          const counted = await explain(`BEGIN; ${exactSettings(settings)}`, countStatement(settings, opts, 4001))
          assert.match(counted, index, `the count uses the index\n${counted}`)
          const plan = await explain(`BEGIN; ${exactSettings(settings)}`, searchStatement(settings, q, opts, true), true)
          assert.match(plan, index, plan)
          assert.doesNotMatch(plan, /hnsw|Seq Scan on images\b/, plan)
          // the exact path reads no more rows of the table than the filter matches
          const read = [...plan.matchAll(/(?:Heap Scan|Index Scan|Index Only Scan)[^\n]* on images\b[^\n]*actual time=[\d.]+\.\.[\d.]+ rows=(\d+) loops=(\d+)/g)].reduce((n, m) => n + Number(m[1]) * Number(m[2]), 0)
          assert.ok(read > 0 && read <= matches, `read ${read} rows of images for ${matches} matches\n${plan}`)
          const exact = backend.images.counters.exact
          const hits = await backend.images.search(q, opts)
          assert.equal(backend.images.counters.exact, exact + 1)
          assert.deepEqual(hits.map((h) => h.id), exactNearest(pool.rows.filter((r) => matchesFilter(r.metadata, parseFilter(filter)!)), q, 10).map((r) => r.id))
        }
        // a filter matching more than the cutoff (here 1000; 4000 by default) walks the HNSW index with the iterative scan
        settings.exactMaxMatches = 1000
        const half = { k: 10, filter: { i: { $gte: 3000 } } }
        const walkPlan = await explain(`BEGIN; ${searchSettings(settings, half)}`, searchStatement(settings, q, half))
        assert.match(walkPlan, /Index Scan using images_embedding_vector_hnsw/)
        const walks = backend.images.counters.walk
        assert.equal((await backend.images.search(q, half)).length, 10)
        assert.equal(backend.images.counters.walk, walks + 1)
      } finally {
        await backend.close()
      }
    })

    it('EXPLAIN: a range filter is one range scan of the side table, and the count streams, reading at most the cutoff + 1 matches', async (t) => {
      if (!('url' in db) || !db.multiConnection) { t.skip('needs a fresh database of its own (PGlite serves one)'); return }
      const backend = await openPostgresBackend({ databaseUrl: await db.newDatabase(), poolSize: 1 }, { modelId: 'range-plan-model', dim: 8 })
      try {
        const pool = new Pool(6000, 20, 11, 8)
        await storeAnalyzed(backend, pool)
        const settings = backend.images.settings
        const q = pool.query(2)
        const explain = async (st: { text: string, values: unknown[] }): Promise<string> =>
          await withTransaction(backend, `BEGIN; ${exactSettings(settings)}`, async (c) => (await c.query<{ 'QUERY PLAN': string }>({ text: `EXPLAIN (ANALYZE, COSTS OFF) ${st.text}`, values: st.values })).rows.map((r) => r['QUERY PLAN']).join('\n'))
        /** the most rows that one scan of the side table brought back (the count reads the matches once, the exact path once more) */
        const keysRead = (plan: string): number => Math.max(0, ...[...plan.matchAll(/(?:Heap Scan|Index Scan|Index Only Scan)[^\n]* on images_metadata_keys\b[^\n]*actual time=[\d.]+\.\.[\d.]+ rows=(\d+) loops=(\d+)/g)].map((m) => Number(m[1]) * Number(m[2])))
        // 1%: both bounds in one index condition, and only the 60 matches read (two half-lines read 5,000 and 1,060)
        const narrow = { k: 10, filter: { i: { $gte: 4000, $lt: 4060 } } }
        const plan = await explain(plannedStatement(settings, q, narrow, 1000))
        assert.match(plan, /Index Cond: \(\(key = 'i'::text\) AND \(num >= [^)]+\) AND \(num < [^)]+\)\)/, plan)
        assert.ok(keysRead(plan) > 0 && keysRead(plan) <= 60, `a scan read ${keysRead(plan)} side-table rows for 60 matches\n${plan}`)
        assert.doesNotMatch(plan, /hnsw|Seq Scan/, plan)
        const hits = await backend.images.search(q, narrow)
        assert.deepEqual(hits.map((h) => h.id), exactNearest(pool.rows.filter((r) => (r.metadata.i as number) >= 4000 && (r.metadata.i as number) < 4060), q, 10).map((r) => r.id))
        // 50% with a cutoff of 100: the count stops at 101 (a de-duplication of the range first read all 3,000), and nothing is sorted exactly
        const broad = { k: 10, filter: { i: { $gte: 1000, $lt: 4000 } } }
        const counted = await explain(plannedStatement(settings, q, broad, 100))
        assert.doesNotMatch(counted, /HashAggregate|Seq Scan/, counted)
        assert.ok(keysRead(counted) > 0 && keysRead(counted) <= 101, `a scan read ${keysRead(counted)} side-table rows to count to 101\n${counted}`)
        settings.exactMaxMatches = 100
        const walks = backend.images.counters.walk
        const walked = await backend.images.search(q, broad)
        assert.equal(backend.images.counters.walk, walks + 1)
        assert.equal(walked.length, 10)
        assert.ok(walked.every((h) => (h.metadata.i as number) >= 1000 && (h.metadata.i as number) < 4000))
      } finally {
        await backend.close()
      }
    })

    it('a filtered search is one round trip, exact or walked; the exact cutoff follows the table\'s size', async (t) => {
      if (!('url' in db) || !db.multiConnection) { t.skip('needs a fresh database of its own (PGlite serves one)'); return }
      const backend = await openPostgresBackend({ databaseUrl: await db.newDatabase(), poolSize: 1 }, { modelId: 'trips-model', dim: 8 })
      try {
        const pool = new Pool(3000, 20, 17, 8)
        await storeAnalyzed(backend, pool)
        let trips = 0
        const counting = new Proxy(backend.pool, { get: (target, prop, recv) => prop === 'query' ? (...args: unknown[]) => { trips++; return (target.query as (...a: unknown[]) => unknown)(...args) } : Reflect.get(target, prop, recv) })
        const settings = { ...backend.images.settings, exactMaxMatches: 100 }
        const q = pool.query(4)
        for (const [filter, path] of [[{ i: { $lt: 30 } }, 'exact'], [{ i: { $gte: 1500 } }, 'walk']] as const) {
          const counters = { exact: 0, walk: 0, walkThenExact: 0, walkUncounted: 0, plainRetries: 0 }
          trips = 0
          const hits = await searchNearest(counting, settings, q, { k: 10, filter }, counters)
          assert.equal(counters[path], 1, path)
          assert.equal(trips, 1, `${path}: one round trip`)
          assert.deepEqual(hits.map((h) => h.id).slice(0, 5), exactNearest(pool.rows.filter((r) => matchesFilter(r.metadata, parseFilter(filter)!)), q, 5).map((r) => r.id))
        }
        // the cutoff where the exact path and the walk cost the same: √(k × rows), bounded
        assert.equal(exactCutoff(10, undefined), EXACT_MAX_MATCHES)
        assert.ok(exactCutoff(10, 20_000) < exactCutoff(10, 100_000) && exactCutoff(10, 100_000) < exactCutoff(10, 1_000_000))
        assert.equal(exactCutoff(10, 4 * 20_000), 2 * exactCutoff(10, 20_000))
        await backend.images.search(q, { k: 10, filter: { group: 'rare' } })
        assert.equal(backend.images.settings.rowsEstimate, 3000, 'a filtered search reads the table\'s estimated size')
      } finally {
        await backend.close()
      }
    })

    it('a filter its metadata sample shows to match many walks with no count first; a stale "many" still answers exactly', async (t) => {
      if (!('url' in db) || !db.multiConnection) { t.skip('needs a fresh database of its own (PGlite serves one)'); return }
      const backend = await openPostgresBackend({ databaseUrl: await db.newDatabase(), poolSize: 1 }, { modelId: 'sample-model', dim: 8 })
      try {
        const pool = new Pool(3000, 20, 23, 8)
        await storeAnalyzed(backend, pool)
        backend.images.settings.exactMaxMatches = 100
        const c = backend.images.counters
        const q = pool.query(2)
        const exactTop = (filter: Record<string, unknown>, rows = pool.rows): string[] =>
          exactNearest(rows.filter((r) => matchesFilter(r.metadata, parseFilter(filter)!)), q, 10).map((r) => r.id)
        const broad = { i: { $gte: 1000 } } // 2,000 of 3,000 rows
        const walked = await backend.images.search(q, { k: 10, filter: broad })
        assert.deepEqual([c.walkUncounted, c.walk, c.exact], [1, 1, 0], 'the broad filter walks, uncounted')
        assert.deepEqual(walked.map((h) => h.id).slice(0, 5), exactTop(broad).slice(0, 5))
        const narrow = { i: { $lt: 30 } }
        assert.deepEqual((await backend.images.search(q, { k: 10, filter: narrow })).map((h) => h.id), exactTop(narrow))
        assert.deepEqual([c.walkUncounted, c.exact], [1, 1], 'a filter the sample cannot call is counted, and takes the exact path')
        // the sample is a minute old at most: it still says "many" after most of those rows are gone
        await backend.pool.query("DELETE FROM images WHERE (metadata->>'i')::int >= 1005")
        const left = await backend.images.search(q, { k: 10, filter: broad })
        assert.deepEqual([c.walkUncounted, c.walkThenExact], [2, 1], 'the short walk takes the exact path')
        assert.deepEqual(left.map((h) => h.id), exactTop(broad, pool.rows.filter((r) => (r.metadata.i as number) < 1005)))
        assert.equal(left.length, 5)
      } finally {
        await backend.close()
      }
    })

    it('a filtered search after the first does not wait for the table\'s size and sample to be read again', async (t) => {
      if (!('url' in db) || !db.multiConnection) { t.skip('needs a fresh database of its own (PGlite serves one)'); return }
      const backend = await openPostgresBackend({ databaseUrl: await db.newDatabase(), poolSize: 2 }, { modelId: 'refresh-model', dim: 8 })
      let open = (): void => {}
      const gate = new Promise<void>((resolve) => { open = resolve })
      try {
        const pool = new Pool(500, 20, 31, 8)
        await storeAnalyzed(backend, pool)
        const q = pool.query(1)
        await backend.images.search(q, { k: 5, filter: { group: 'rare' } })
        // from now on the refresh's statements (the size estimate, the sample) wait at the gate
        let held = 0
        const real = backend.pool
        const gated = new Proxy(real, {
          get: (target, prop, recv) => prop !== 'query'
            ? Reflect.get(target, prop, recv)
            : async (...args: unknown[]) => {
              if (/pg_class|^SELECT metadata FROM/.test(String(args[0]))) { held++; await gate }
              return await (target.query as (...a: unknown[]) => Promise<unknown>).apply(target, args)
            }
        })
        Object.assign(backend.images, { pool: gated, estimateEveryMs: 0 })
        const hits = await Promise.race([backend.images.search(q, { k: 5, filter: { group: 'rare' } }), sleep(TIMEOUT.unit / 3).then(() => 'waited' as const)])
        assert.notEqual(hits, 'waited', 'the search waited for the refresh')
        assert.equal(held, 1, 'the refresh started, and is held at the gate')
        assert.deepEqual((hits as Array<{ id: string }>).map((h) => h.id), exactNearest(pool.rows.filter((r) => r.metadata.group === 'rare'), q, 5).map((r) => r.id))
      } finally {
        open()
        await sleep(100)
        await backend.close()
      }
    })

    it('a search past its time bound is cancelled by statement_timeout', async (t) => {
      if (!('url' in db) || !db.multiConnection) { t.skip('needs a fresh database of its own (PGlite serves one)'); return }
      const backend = await openPostgresBackend({ databaseUrl: await db.newDatabase(), poolSize: 1 }, { modelId: 'timeout-model', dim: 8 })
      try {
        const pool = new Pool(5000, 20, 9, 8)
        await storeAnalyzed(backend, pool)
        assert.match(searchSettings(backend.images.settings, { k: 10 }), /SET LOCAL statement_timeout = 10000/)
        backend.images.settings.timeoutMs = 1
        // the exact path, whatever the metadata sample says: a walk that finds 10 of 5,000 matches
        // can finish in 1 ms; counting, reading and sorting all 5,000 cannot
        backend.images.settings.exactMaxMatches = 1_000_000
        await assert.rejects(backend.images.search(pool.query(0), { k: 10, filter: { i: { $lt: 5000 } } }), /PG_STATEMENT_TIMEOUT|statement timeout/)
      } finally {
        await backend.close()
      }
    })

    it('is what openBackend opens when DATABASE_URL is set (SQLite otherwise)', async (t) => {
      if (!('url' in db) || !db.multiConnection) { t.skip('needs a fresh database of its own (PGlite serves one)'); return }
      const dir = await mkdtemp(path.join(tmpdir(), 'open-backend-'))
      const settings = { dataDir: dir, hnsw: { M: 16, efConstruction: 200, efSearch: 64 }, checkpointEvery: 1000 }
      try {
        const config = loadConfig({ DATABASE_URL: await db.newDatabase(), DATABASE_POOL_SIZE: '2', PG_VECTOR_TYPE: 'halfvec' }, dir)
        const postgres = await openBackend({ ...settings, database: config.database }, identity, recordingLogger())
        assert.deepEqual([postgres.name, postgres.indexInfo().kind, (postgres as PostgresBackend).pool.options.max], ['postgres', 'pgvector hnsw (halfvec)', 2])
        await postgres.close()
        const sqlite = await openBackend(settings, identity, recordingLogger())
        assert.equal(sqlite.name, 'sqlite')
        await sqlite.close()
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    })

    it('applies HNSW_M and HNSW_EF_CONSTRUCTION when it builds the index, and reports (and keeps) the built ones later', async (t) => {
      if (!('url' in db) || !db.multiConnection) { t.skip('needs a fresh database of its own (PGlite serves one)'); return }
      const url = await db.newDatabase()
      const first = await openPostgresBackend({ databaseUrl: url, poolSize: 3, hnsw: { M: 8, efConstruction: 40, efSearch: 20 } }, identity)
      assert.deepEqual(first.indexInfo(), { kind: 'pgvector hnsw (vector)', vectorType: 'vector', M: 8, efConstruction: 40, efSearch: 20, capacity: null })
      assert.equal(first.pool.options.max, 3, 'DATABASE_POOL_SIZE')
      // a plain search runs on the session's settings, with no SET of its own: every pooled connection has HNSW_EF_SEARCH
      const shown = await Promise.all([1, 2, 3].map(async () => (await first.pool.query<Record<string, string>>('SHOW hnsw.ef_search')).rows[0]?.['hnsw.ef_search']))
      assert.deepEqual(shown, ['20', '20', '20'])
      await first.close()
      const logger = recordingLogger()
      const second = await openPostgresBackend({ databaseUrl: url, hnsw: { M: 16 }, logger }, identity)
      assert.equal(second.indexInfo().M, 8, 'the index as built, not as configured')
      assert.ok(logger.lines.some((l) => l.level === 'warn' && /HNSW_M=16, the database's index: 8.*npm run db:reindex/.test(l.msg)))
      await second.close()
    })

    it('processes started at once on an empty database all migrate it and start', async (t) => {
      if (!('url' in db) || !db.multiConnection) { t.skip('PGlite serves one session: two processes would share its transactions'); return }
      const url = await db.newDatabase()
      const children = ['one', 'two', 'three'].map((id) => spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/postgres/open-backend.ts', url, id], { stdio: ['pipe', 'pipe', 'pipe'] }))
      const outputs = children.map((c) => createInterface({ input: c.stdout! }))
      const stderr = children.map((c) => { let s = ''; c.stderr!.on('data', (d: Buffer) => { s += d.toString() }); return () => s })
      // release them together, once every one of them is ready
      await Promise.all(outputs.map(async (o) => { for await (const line of o) if (line === 'ready') return }))
      for (const c of children) c.stdin!.write('go\n')
      const results = await Promise.all(children.map(async (c, i) => {
        const lines: string[] = []
        outputs[i]!.on('line', (l) => lines.push(l))
        const [code] = await once(c, 'exit') as [number]
        return { code, lines, stderr: stderr[i]!() }
      }))
      for (const r of results) {
        assert.equal(r.code, 0, r.stderr)
        assert.equal(JSON.parse(r.lines.at(-1)!).outcome.status, 'indexed')
      }
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      try {
        const files = (await readdir('src/backends/postgres/migrations')).filter((f) => f.endsWith('.sql')).map((f) => f.replace(/\.sql$/, '')).sort()
        const ran = (await c.query<{ name: string }>(`SELECT name FROM ${MIGRATIONS_TABLE} ORDER BY name`)).rows.map((r) => r.name)
        assert.deepEqual(ran, files, 'each migration ran once')
        assert.equal((await c.query('SELECT count(*)::int AS n FROM images')).rows[0].n, 3)
        const indexes = (await c.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%hnsw' ORDER BY 1")).rows.map((r) => r.indexname)
        assert.deepEqual(indexes, ['images_embedding_vector_hnsw', 'texts_embedding_vector_hnsw'])
      } finally {
        await c.end()
      }
    })

    it('upgrades a database of an earlier schema in place, keeping its rows', async (t) => {
      if (!('url' in db) || !db.multiConnection) { t.skip('needs a fresh database of its own (PGlite serves one)'); return }
      const url = await db.newDatabase()
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      try {
        await c.query(`SELECT set_config('align_search.dim', '${DIM}', false)`)
        await runner({ dbClient: c, dir: MIGRATIONS_DIR, direction: 'up', count: 1, migrationsTable: MIGRATIONS_TABLE, noLock: true, log: () => {} })
        await c.query("INSERT INTO meta (key, value) VALUES ('model_id', $1), ('dim', $2)", [identity.modelId, String(DIM)])
        await c.query("INSERT INTO jobs (id, kind, status, source, root, done, failed) VALUES ('old-job', 'items', 'done', '{}', '/data', 3, 1)")
        await c.query("INSERT INTO images (id, sha256, width, height, embedding) VALUES ('old-image', $1, 1, 1, $2)", ['a'.repeat(64), `[${Array.from({ length: DIM }, (_, i) => i === 0 ? 1 : 0).join(',')}]`])
      } finally {
        await c.end()
      }
      const backend = await openPostgresBackend({ databaseUrl: url, poolSize: 1 }, identity)
      try {
        const job = await backend.jobs.view('old-job')
        assert.deepEqual([job?.done, job?.indexed, job?.duplicate, job?.failed, job?.duplicates], [3, 3, 0, 1, []], 'done items of old jobs count as indexed')
        assert.equal((await backend.images.get('old-image'))?.source, null)
      } finally {
        await backend.close()
      }
    })

    it('writers of the same content in two instances agree on one row', async (t) => {
      if (!('url' in db) || !db.multiConnection) { t.skip('PGlite serves one session: two connections would share its transactions'); return }
      const url = await db.newDatabase()
      const [a, b] = [await openPostgresBackend({ databaseUrl: url, poolSize: 4 }, identity), await openPostgresBackend({ databaseUrl: url, poolSize: 4 }, identity)]
      try {
        const pool = new Pool(8, 2, 11)
        // the same eight images, offered 16 times over by both instances at once
        const writes = Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? a : b).images.add(pool.rows.map((r) => ({ ...r, id: undefined }))))
        const outcomes = (await Promise.all(writes)).flat()
        assert.equal(await a.images.count(), 8)
        assert.equal(outcomes.filter((o) => o.status === 'indexed').length, 8, 'each image indexed exactly once')
        const ids = new Map<string, Set<string>>()
        outcomes.forEach((o, i) => {
          assert.notEqual(o.status, 'failed')
          const sha = pool.rows[i % 8]!.sha256
          ids.set(sha, (ids.get(sha) ?? new Set()).add((o as { id: string }).id))
        })
        for (const set of ids.values()) assert.equal(set.size, 1, 'every writer was told the one stored id')
      } finally {
        await a.close()
        await b.close()
      }
    })

    it('survives the server going away: /ready says why (logged once), nothing crashes, and it serves again once the server is back', async (t) => {
      if (!('url' in db) || db.serverDown === undefined || db.serverUp === undefined) { t.skip('only a throwaway cluster can be stopped and started'); return }
      const url = await db.newDatabase()
      const logger = recordingLogger()
      const backend: PostgresBackend = await openPostgresBackend({ databaseUrl: url, poolSize: 2, logger }, identity)
      try {
        const pool = new Pool(20, 2, 5)
        await backend.images.add(pool.rows)
        assert.deepEqual(await backend.health(), { ok: true })
        await db.serverDown()
        const down = [await backend.health(), await backend.health(), await backend.health()]
        for (const h of down) {
          assert.equal(h.ok, false)
          assert.match(h.reason ?? '', /^PostgreSQL is unreachable: /)
          assert.doesNotMatch(h.reason ?? '', /127\.0\.0\.1|postgres@/, '/ready answers name no address')
        }
        await assert.rejects(backend.images.search(pool.query(0), { k: 3 }), BackendUnavailableError)
        assert.equal(logger.lines.filter((l) => l.level === 'error' && /unreachable/.test(l.msg)).length, 1, 'said once, not at every probe')
        await db.serverUp()
        let back = await backend.health()
        for (let i = 0; i < 20 && !back.ok; i++) { await sleep(250); back = await backend.health() }
        assert.deepEqual(back, { ok: true })
        assert.equal((await backend.images.search(pool.query(0), { k: 3 })).length, 3)
        assert.ok(logger.lines.some((l) => l.level === 'info' && /reachable again/.test(l.msg)))
      } finally {
        await backend.close()
      }
    })
  })
}

async function withTransaction<T> (backend: PostgresBackend, begin: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await backend.pool.connect()
  try {
    await c.query(begin)
    const out = await fn(c)
    await c.query('COMMIT')
    return out
  } finally {
    c.release()
  }
}
