/**
 * ONE contract for the model slots (ports.ts ModelSlots) of every backend: SQLite + hnswlib, a real
 * PostgreSQL with pgvector, and PGlite. A standby model of another dimension is filled beside the
 * active one, keeps what was filled across a restart, gets writes and deletes made meanwhile, swaps
 * in one step (searches then answer from its vectors), swaps back, and is dropped. A backend that
 * cannot run here is skipped with the reason printed.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { openPostgresBackend } from '../../src/backends/postgres/open-postgres-backend.js'
import { openSqliteBackend } from '../../src/backends/sqlite/open-sqlite-backend.js'
import type { Backend, BackendIdentity, ModelSlots } from '../../src/backends/ports.js'
import { startTestPostgres, type TestPostgresResult } from '../../scripts/lib/postgres-server.js'
import { TIMEOUT } from '../helpers/timeouts.js'
import { DIM, exactNearest, Pool } from '../helpers/vectors.js'

const A: BackendIdentity = { modelId: 'model-a', dim: DIM }
const B_DIM = 8
const N = 300

interface Subject { name: string, skip?: string, open: () => Promise<Backend>, second?: () => Promise<Backend>, cleanup: () => Promise<void> }

async function sqliteSubject (): Promise<Subject> {
  const dir = await mkdtemp(path.join(tmpdir(), 'slots-sqlite-'))
  return { name: 'SQLite + hnswlib', open: async () => await openSqliteBackend({ dataDir: dir }, A), cleanup: async () => { await rm(dir, { recursive: true, force: true }) } }
}

function postgresSubject (name: string, pg: TestPostgresResult): Subject {
  if (!('url' in pg)) return { name, skip: pg.skip, open: async () => { throw new Error(pg.skip) }, cleanup: async () => {} }
  const open = async (): Promise<Backend> => await openPostgresBackend({ databaseUrl: pg.url, poolSize: pg.multiConnection ? 4 : 1, recordRefreshMs: 60_000 }, A)
  return { name: `${name} (${pg.kind})`, open, ...(pg.multiConnection ? { second: open } : {}), cleanup: async () => { await pg.stop() } }
}

const subjects = [
  await sqliteSubject(),
  postgresSubject('PostgreSQL', await startTestPostgres({ engine: 'server' })),
  postgresSubject('PGlite', await startTestPostgres({ engine: 'pglite' }))
]
after(async () => { for (const s of subjects) await s.cleanup() })

const slotsOf = (b: Backend): ModelSlots => { assert.ok(b.models !== undefined, `${b.name} has model slots`); return b.models }

for (const subject of subjects) {
  describe(`model slots contract: ${subject.name}`, { timeout: TIMEOUT.server, ...(subject.skip === undefined ? {} : { skip: subject.skip }) }, () => {
    it('a standby model of another dimension: filled beside, kept across a restart, writes reach both, one swap, swap back, drop', async () => {
      const a = new Pool(N, 10, 11)
      const b = new Pool(N + 10, 10, 12, B_DIM) // the same rows as model B sees them
      let backend = await subject.open()
      try {
        await backend.images.add(a.rows)
        await backend.texts.add(a.texts(20))
        let slots = slotsOf(backend)
        assert.deepEqual({ modelId: slots.active().modelId, dim: slots.active().dim }, A)
        await slots.beginStandby({ modelId: 'model-b', dim: B_DIM, state: 'building', since: new Date().toISOString() })
        assert.equal(await slots.missingCount('images'), N)
        assert.equal(await slots.missingCount('texts'), 20)
        // fill half, then restart: what was filled is kept
        const half = await slots.missing('images', N / 2)
        assert.equal(half.length, N / 2)
        await slots.putStandby('images', half.map((id) => ({ id, embedding: b.byId.get(id)!.embedding })))
        await backend.close()
        backend = await subject.open()
        slots = slotsOf(backend)
        assert.equal(slots.standby()?.modelId, 'model-b')
        assert.equal(slots.standby()?.state, 'building')
        assert.equal(await slots.missingCount('images'), N / 2, 'the filled half survived the restart')
        // a write during the switch carries both models' vectors; a delete reaches both
        const extraA = a.extra(1)
        const extraB = b.rows[N]!
        const [w] = await backend.images.add([{ ...extraA, id: 'extra-1', modelId: 'model-a', alt: { modelId: 'model-b', embedding: extraB.embedding } }])
        assert.equal(w?.status, 'indexed')
        assert.equal(await slots.missingCount('images'), N / 2, 'the new row has the standby vector already')
        assert.deepEqual(await slots.standbyEmbedding('images', 'extra-1'), extraB.embedding)
        assert.equal(await backend.images.remove('img-0'), true)
        // fill the rest, texts too
        for (;;) {
          const ids = await slots.missing('images', 64)
          if (ids.length === 0) break
          await slots.putStandby('images', ids.map((id) => ({ id, embedding: b.byId.get(id)!.embedding })))
        }
        const texts = b.texts(20)
        await slots.putStandby('texts', texts.map((t) => ({ id: t.id, embedding: t.embedding })))
        assert.equal(await slots.missingCount('images') + await slots.missingCount('texts'), 0)

        // a second process sees the swap (where two can share the data)
        const other = subject.second === undefined ? undefined : await subject.second()
        let seen = 0
        other?.models?.onChange?.(() => { seen++ })
        try {
          let swappedInTick = false
          const previous = await slots.swap(() => { swappedInTick = slots.active().modelId === 'model-b' })
          assert.equal(swappedInTick, true, 'onSwapped runs with the new slots in place')
          assert.deepEqual([previous.modelId, previous.dim, previous.state], ['model-a', DIM, 'ready'])
          assert.deepEqual({ modelId: slots.active().modelId, dim: slots.active().dim }, { modelId: 'model-b', dim: B_DIM })
          // searches now answer from model B's vectors, at its dimension
          const q = b.query(3)
          const live = b.rows.filter((r) => r.id !== 'img-0').map((r) => r.id === `img-${N}` ? { ...r, id: 'extra-1' } : r)
          const hits = await backend.images.search(q, { k: 10 })
          const want = exactNearest(live, q, 10).map((r) => r.id)
          const overlap = hits.filter((h) => want.includes(h.id)).length
          assert.ok(overlap >= 9, `recall@10 of model B's vectors: ${overlap}/10`)
          assert.deepEqual(await backend.images.embedding('extra-1'), extraB.embedding)
          assert.equal((await backend.texts.search(texts[5]!.embedding, { k: 1 }))[0]?.id, 'text-5')
          if (other !== undefined) {
            for (let i = 0; i < 100 && other.models!.active().modelId !== 'model-b'; i++) await new Promise((resolve) => setTimeout(resolve, 20))
            assert.equal(other.models!.active().modelId, 'model-b', 'the other process follows the swap (NOTIFY)')
            assert.ok(seen > 0)
            assert.equal((await other.images.search(q, { k: 1 }))[0]?.id, hits[0]?.id)
          }
        } finally {
          await other?.close()
        }

        // swap back: model A's vectors answer again, the row written during the switch among them
        await slots.swap()
        assert.equal(slots.active().modelId, 'model-a')
        assert.equal((await backend.images.search(extraA.embedding, { k: 1 }))[0]?.id, 'extra-1')
        assert.equal(await backend.images.embedding('img-0'), undefined)

        await slots.dropStandby()
        assert.equal(slots.standby(), undefined)
        assert.equal(await slots.missingCount('images'), 0)
        await backend.close()
        backend = await subject.open()
        assert.equal(slotsOf(backend).standby(), undefined)
        assert.equal(slotsOf(backend).active().modelId, 'model-a')
      } finally {
        await backend.close()
      }
    })
  })
}
