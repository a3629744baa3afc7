/**
 * The claims that share a model switch's re-embedding between processes (pg-model-slots.ts,
 * migration 0011), with two backends on one real PostgreSQL standing for two processes: each claim
 * hands out rows no other live claim holds; a live holder keeps its claims past the lease (it
 * renews them); a lapsed claim is handed out again; unclaim gives rows back at once; storing a row
 * ends its claim; a swap clears what is left. Skips, with the reason, where there is no PostgreSQL server.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import pg from 'pg'
import { openPostgresBackend } from '../../../src/backends/postgres/open-postgres-backend.js'
import type { Backend, ModelSlots } from '../../../src/backends/ports.js'
import { startTestPostgres } from '../../../scripts/lib/postgres-server.js'
import { TIMEOUT } from '../../helpers/timeouts.js'
import { DIM, Pool } from '../../helpers/vectors.js'

const LEASE_MS = 600
const N = 40
const server = await startTestPostgres({ engine: 'server' })
const skip = 'url' in server ? undefined : `no PostgreSQL: ${server.skip}`
after(async () => { if ('url' in server) await server.stop() })

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

describe('model switch claims on PostgreSQL', { timeout: TIMEOUT.server, ...(skip === undefined ? {} : { skip }) }, () => {
  it('two processes never claim the same rows; a live claim outlasts the lease, a lapsed one is handed out again; unclaim and put end claims', async (t) => {
    const url = 'url' in server ? server.url : ''
    const open = async (): Promise<Backend> => await openPostgresBackend({ databaseUrl: url, poolSize: 2, recordRefreshMs: 60_000, switchClaimLeaseMs: LEASE_MS }, { modelId: 'model-a', dim: DIM })
    const a = await open()
    t.after(async () => { await a.close() })
    const b = await open()
    t.after(async () => { await b.close() })
    const db = new pg.Client({ connectionString: url })
    await db.connect()
    t.after(async () => { await db.end() })
    const slotsA = a.models as ModelSlots
    const slotsB = b.models as ModelSlots
    const model = new Pool(N, 4, 21, 8)
    await a.images.add(new Pool(N, 4, 20).rows)
    await slotsA.beginStandby({ modelId: 'model-b', dim: 8, state: 'building', since: new Date().toISOString() })
    await slotsB.refresh!()
    const put = async (slots: ModelSlots, ids: string[]): Promise<void> => { await slots.putStandby('images', ids.map((id) => ({ id, embedding: model.byId.get(id)!.embedding })), 'model-b') }

    // disjoint claims, until every missing row is claimed
    const a1 = await slotsA.missing('images', 16)
    const b1 = await slotsB.missing('images', 16)
    const a2 = await slotsA.missing('images', 16)
    assert.deepEqual([a1.length, b1.length, a2.length], [16, 16, 8])
    assert.equal(new Set([...a1, ...b1, ...a2]).size, N, 'no row claimed twice')
    assert.deepEqual(await slotsB.missing('images', 16), [], 'nothing left to claim')
    assert.equal(await slotsA.claimsLive!(), true)
    assert.equal(await slotsA.missingCount('images'), N, 'claimed rows still count as missing (progress)')

    // A renews its claims: past twice the lease B still gets none of them
    await sleep(2 * LEASE_MS)
    assert.deepEqual(await slotsB.missing('images', 64), [], 'a live holder keeps its claims past the lease')

    // storing rows ends their claims; unclaim gives the rest back at once
    await put(slotsB, b1)
    await slotsA.unclaim!()
    const again = await slotsB.missing('images', 64)
    assert.deepEqual([...again].sort(), [...a1, ...a2].sort(), 'A\'s rows, given back, are claimed by B')

    // a holder that stops renewing (it died): its claims lapse after the lease and are handed out again
    await db.query("UPDATE model_switch_claims SET holder = 'dead-process'")
    assert.deepEqual(await slotsA.missing('images', 64), [], 'not before the claim lapses')
    await sleep(LEASE_MS + 200)
    const lapsed = await slotsA.missing('images', 64)
    assert.deepEqual([...lapsed].sort(), [...again].sort(), 'a lapsed claim is handed out again')
    await put(slotsA, lapsed)
    assert.equal(await slotsA.missingCount('images'), 0)
    assert.equal(await slotsA.claimsLive!(), false, 'no live claim once every row is stored')

    // a stale writer (its switch swapped meanwhile) is refused
    await db.query("INSERT INTO model_switch_claims (tbl, id, holder, expires_at) VALUES ('images', 'gone', 'dead-process', now())")
    await slotsA.swap()
    assert.equal((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM model_switch_claims')).rows[0]!.n, 0, 'the swap clears the claims')
    await assert.rejects(slotsA.putStandby('images', [{ id: 'img-0', embedding: model.byId.get('img-0')!.embedding }], 'model-b'), /standby model is now model-a/)
  })
})
