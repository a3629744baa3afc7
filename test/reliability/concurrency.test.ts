/**
 * Concurrency, over a real socket: searches interleaved with uploads, deletes and a running
 * job never crash, never return an image whose DELETE had already been answered, and give the
 * same answer to the same question when nothing is written in between. Racing writers of the
 * same content or the same id end with exactly one stored image.
 */
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { TIMEOUT } from '../helpers/timeouts.js'
import { assertError, type Api, type Hit, type ItemResult } from './support/api.js'
import { distinctImage } from './support/images.js'
import { serviceEnv, spawnService, tempDirs, type Dirs, type SpawnedService } from './support/servers.js'

const SECONDS = Number(process.env.RELIABILITY_CONCURRENCY_SECONDS ?? 15)
const JOB_IMAGES = 80
const WORDS = ['red', 'blue', 'circle', 'stripes', 'square', 'green', 'dark', 'light', 'checks', 'rings', 'an icon of a cat', 'arrow']

describe('concurrency', { timeout: TIMEOUT.server * 2 }, () => {
  let dirs: Dirs
  let svc: SpawnedService
  let api: Api
  let dim = 0
  const live = new Set<string>()
  /** id → performance.now() when its DELETE answered 204 */
  const deletedAt = new Map<string, number>()
  const bytesOf = new Map<string, Buffer>()
  let jobId = ''

  before(async () => {
    dirs = tempDirs('align-concurrency-')
    mkdirSync(path.join(dirs.importDir, 'jobs'))
    for (let i = 0; i < JOB_IMAGES; i++) writeFileSync(path.join(dirs.importDir, 'jobs', `j-${i}.png`), await distinctImage(30_000 + i, 64))
    svc = await spawnService(serviceEnv(dirs, { CHECKPOINT_EVERY: '25' }))
    api = svc.api
    dim = (await api.get('/v1/info')).json.model.dim as number
    const seeds = await Promise.all(Array.from({ length: 24 }, async (_, i) => ({ id: `seed-${i}`, bytes: await distinctImage(20_000 + i) })))
    for (let i = 0; i < seeds.length; i += 8) {
      for (const it of await api.uploadOk(seeds.slice(i, i + 8))) { assert.equal(it.status, 'indexed'); live.add(it.id) }
    }
    for (const s of seeds) bytesOf.set(s.id, s.bytes)
  })

  after(async () => {
    await svc?.server.stop()
    dirs?.remove()
  })

  const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)]!

  function randomQuery (): unknown {
    const r = Math.random()
    const k = 1 + Math.floor(Math.random() * 40)
    if (r < 0.4) return { query: [{ text: `${pick(WORDS)} ${pick(WORDS)}` }], k }
    if (r < 0.75 && live.size > 0) return { query: [{ imageId: pick([...live]) }], k }
    if (r < 0.9) return { query: [{ vector: Array.from({ length: dim }, () => Math.random() - 0.5) }], k }
    return { query: [{ text: pick(WORDS) }, { imageId: pick([...live]), weight: -0.5 }], k, explain: true }
  }

  test('searches interleaved with uploads, deletes and a job: no 5xx, no deleted image returned', async (t) => {
    const created = await api.post('/v1/index-jobs', { directory: 'jobs' })
    assert.equal(created.status, 202, created.text)
    jobId = created.json.jobId as string

    const stopAt = performance.now() + SECONDS * 1000
    const problems: string[] = []
    let searches = 0
    let n = 0

    const writer = async (): Promise<void> => {
      while (performance.now() < stopAt) {
        const files = await Promise.all([0, 1].map(async () => { const i = n++; return { id: `w-${i}`, bytes: await distinctImage(40_000 + i) } }))
        const res = await api.upload(files)
        if (res.status !== 200) { problems.push(`upload answered ${res.status} ${res.text}`); continue }
        for (const [i, it] of (res.json.items as ItemResult[]).entries()) {
          if (it.status !== 'indexed') { problems.push(`upload item ${JSON.stringify(it)}`); continue }
          live.add(it.id)
          bytesOf.set(it.id, files[i]!.bytes)
        }
        if (live.size > 10) {
          const victim = pick([...live])
          live.delete(victim)
          const del = await api.del(`/v1/images/${victim}`)
          if (del.status !== 204) { problems.push(`DELETE ${victim} answered ${del.status} ${del.text}`); continue }
          deletedAt.set(victim, performance.now())
          const gone = await api.get(`/v1/images/${victim}`)
          if (gone.status !== 404) problems.push(`GET ${victim} after its DELETE answered ${gone.status}`)
        }
      }
    }

    const searcher = async (): Promise<void> => {
      while (performance.now() < stopAt) {
        const body = randomQuery()
        const sentAt = performance.now()
        const res = await api.search(body)
        searches++
        if (res.status === 404) continue // the image a query named was deleted meanwhile
        if (res.status !== 200) { problems.push(`search answered ${res.status} ${res.text.slice(0, 200)}`); continue }
        for (const hit of res.json.results as Hit[]) {
          const at = deletedAt.get(hit.id)
          if (at !== undefined && at < sentAt) problems.push(`search returned "${hit.id}", deleted ${Math.round(sentAt - at)} ms before the search was sent`)
          if (!Number.isFinite(hit.score)) problems.push(`non-finite score ${String(hit.score)}`)
        }
      }
    }

    await Promise.all([writer(), searcher(), searcher(), searcher()])
    t.diagnostic(`${searches} searches, ${n} uploads, ${deletedAt.size} deletes in ${SECONDS} s`)
    assert.deepEqual(problems, [])
    assert.ok(searches > 20, `only ${searches} searches ran`)
    assert.ok(deletedAt.size > 0, 'no delete ran')
    await api.assertHealthy()

    const job = await api.waitForJob(jobId, TIMEOUT.server)
    assert.equal(job.status, 'done', JSON.stringify(job))
    assert.equal(job.done, JOB_IMAGES)
    assert.equal((await api.counts()).images, live.size + JOB_IMAGES)
    for (const id of deletedAt.keys()) assertError(await api.get(`/v1/images/${id}`), 404, 'NOT_FOUND')
  })

  test('the same query twice with no write in between gives the same ids', async () => {
    const queries = Array.from({ length: 12 }, () => randomQuery())
    for (const q of queries) {
      const a = (await api.hits(q)).map((h) => h.id)
      const b = (await api.hits(q)).map((h) => h.id)
      assert.deepEqual(b, a, `sequential repeats differ for ${JSON.stringify(q).slice(0, 120)}`)
      const parallel = await Promise.all([0, 1, 2, 3].map(async () => (await api.hits(q)).map((h) => h.id)))
      for (const p of parallel) assert.deepEqual(p, a, `concurrent repeats differ for ${JSON.stringify(q).slice(0, 120)}`)
    }
    for (const id of [...live].slice(0, 20)) await api.assertFindable(id)
  })

  test('a deleted image\'s bytes can be indexed again and are found', async () => {
    const victim = [...deletedAt.keys()][0]!
    const bytes = bytesOf.get(victim)!
    const [it] = await api.uploadOk([{ bytes, id: `${victim}-again` }])
    assert.equal(it?.status, 'indexed', `re-adding deleted content: ${JSON.stringify(it)}`)
    await api.assertFindable(`${victim}-again`)
    live.add(`${victim}-again`)
  })

  test('racing uploads of the same bytes store one image; racing uploads under one id store one', async () => {
    const before = (await api.counts()).images
    const same = await distinctImage(60_000)
    const answers = await Promise.all(Array.from({ length: 6 }, async () => await api.uploadOk([{ bytes: same }])))
    const items = answers.map((a) => a[0]!)
    const indexed = items.filter((it) => it.status === 'indexed')
    assert.equal(indexed.length, 1, JSON.stringify(items))
    for (const it of items) assert.equal(it.id, indexed[0]!.id, `every duplicate names the stored id: ${JSON.stringify(items)}`)
    assert.equal((await api.counts()).images, before + 1)

    const racers = await Promise.all(Array.from({ length: 6 }, async (_, i) => await api.uploadOk([{ id: 'contested', bytes: await distinctImage(60_100 + i) }])))
    const outcomes = racers.map((a) => a[0]!.status)
    assert.equal(outcomes.filter((s) => s === 'indexed').length, 1, JSON.stringify(racers))
    assert.equal(outcomes.filter((s) => s === 'failed').length, 5, JSON.stringify(racers))
    assert.equal((await api.counts()).images, before + 2)
    await api.assertFindable('contested')
    await api.assertHealthy()
  })
})
