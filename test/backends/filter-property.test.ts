/**
 * The filter language on both backends against its exact evaluation (src/core's matchesFilter):
 * random filters over random metadata (fast-check) return exactly the rows the evaluation keeps,
 * through the planner's exact path and through its HNSW walk (forced by a cutoff of 0).
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { openPostgresBackend, type PostgresBackend } from '../../src/backends/postgres/open-postgres-backend.js'
import { openSqliteBackend, type SqliteBackend } from '../../src/backends/sqlite/open-sqlite-backend.js'
import { matchesFilter, parseFilter } from '../../src/core/metadata-filter.js'
import { startTestPostgres } from '../../scripts/lib/postgres-server.js'
import { TIMEOUT } from '../helpers/timeouts.js'
import { DIM, Pool } from '../helpers/vectors.js'

const KEYS = ['a', 'b', 'c']
const DATES = ['2020-01-01', '2019-12-31T23:00:00Z', '2020-01-01T00:00:00.001Z', '2021-06-30T12:00:00.25Z', '2020-01-01T01:00+02:00']
const scalar = fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom(0.5, -1.25, 1e21), fc.constantFrom('x', 'y', '5', ...DATES), fc.boolean())
/** stored values: the filter's scalars, plus what no comparison matches (null, arrays, objects, non-dates) */
const stored = fc.oneof(scalar, fc.constantFrom(null, [1], ['x'], { x: 1 }, '2020-02-30', 'last summer'))
const metadata = fc.dictionary(fc.constantFrom(...KEYS), stored, { maxKeys: 3 })
const rangeOperand = fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom(0.5, 1e21), fc.constantFrom(...DATES))
const condition = fc.oneof(
  scalar,
  scalar.map((v) => ({ $eq: v })),
  scalar.map((v) => ({ $ne: v })),
  fc.array(scalar, { minLength: 1, maxLength: 3 }).map((v) => ({ $in: v })),
  fc.array(scalar, { minLength: 1, maxLength: 3 }).map((v) => ({ $nin: v })),
  fc.tuple(fc.constantFrom('$gt', '$gte', '$lt', '$lte'), rangeOperand).map(([op, v]) => ({ [op]: v })),
  fc.tuple(fc.constantFrom('$gt', '$gte'), rangeOperand, fc.constantFrom('$lt', '$lte'), rangeOperand).map(([a, x, b, y]) => ({ [a]: x, [b]: y })),
  fc.boolean().map((v) => ({ $exists: v }))
)
const fieldFilter = fc.dictionary(fc.constantFrom(...KEYS), condition, { minKeys: 1, maxKeys: 2 })
const { filter } = fc.letrec<{ filter: Record<string, unknown> }>((tie) => ({
  filter: fc.oneof({ maxDepth: 3, depthIdentifier: 'filter' },
    fieldFilter,
    fc.array(tie('filter'), { minLength: 1, maxLength: 3 }).map((of) => ({ $and: of })),
    fc.array(tie('filter'), { minLength: 1, maxLength: 3 }).map((of) => ({ $or: of })))
}))

const N = 300
const pool = new Pool(N, 6, 11)
const metas = fc.sample(metadata, { numRuns: N, seed: 23 })
const rows = pool.rows.map((r, i) => ({ ...r, metadata: metas[i]! }))
const query = pool.query(2)

interface Subject { name: string, skip?: string, open: () => Promise<SqliteBackend | PostgresBackend>, forceWalk: (b: SqliteBackend | PostgresBackend) => void, cleanup: () => Promise<void> }

const dir = await mkdtemp(path.join(tmpdir(), 'filter-property-'))
const server = await startTestPostgres({ engine: 'server' })
const subjects: Subject[] = [
  {
    name: 'SQLite + hnswlib',
    open: async () => await openSqliteBackend({ dataDir: dir }, { modelId: 'filter-model', dim: DIM }),
    forceWalk: (b) => { (b as SqliteBackend).images.exactMaxMatches = 0 },
    cleanup: async () => { await rm(dir, { recursive: true, force: true }) }
  },
  'url' in server
    ? {
        name: `PostgreSQL (${server.kind})`,
        open: async () => await openPostgresBackend({ databaseUrl: server.url, poolSize: 2 }, { modelId: 'filter-model', dim: DIM }),
        forceWalk: (b) => { (b as PostgresBackend).images.settings.exactMaxMatches = 0 },
        cleanup: async () => { await server.stop() }
      }
    : { name: 'PostgreSQL', skip: server.skip, open: async () => { throw new Error(server.skip) }, forceWalk: () => {}, cleanup: async () => {} }
]
after(async () => { for (const s of subjects) await s.cleanup() })

for (const subject of subjects) {
  describe(`filters on ${subject.name} answer like the exact evaluation`, { timeout: TIMEOUT.server, ...(subject.skip === undefined ? {} : { skip: subject.skip }) }, () => {
    let backend: SqliteBackend | PostgresBackend
    before(async () => {
      backend = await subject.open()
      await backend.images.add(rows)
    })
    after(async () => { await backend?.close() })

    const property = async (runs: number, seed: number): Promise<void> => {
      await fc.assert(fc.asyncProperty(filter, async (f) => {
        const node = parseFilter(f)
        const want = rows.filter((r) => node === undefined || matchesFilter(r.metadata, node)).map((r) => r.id).sort()
        const got = (await backend.images.search(query, { k: 1000, filter: f })).map((h) => h.id).sort()
        assert.deepEqual(got, want, JSON.stringify(f))
      }), { numRuns: runs, seed })
    }

    it('through the exact path (few matches)', async () => {
      await property(200, 1)
    })

    it('through the HNSW walk (the cutoff forced to 0)', async () => {
      subject.forceWalk(backend)
      await property(100, 2)
    })
  })
}
