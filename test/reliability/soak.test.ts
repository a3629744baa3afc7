/**
 * A bounded soak over loopback: mixed search and indexing traffic against the real server
 * process for RELIABILITY_SOAK_SECONDS (default 60) or RELIABILITY_SOAK_REQUESTS (default
 * 10 000) requests, whichever comes first. No request may fail with a 5xx or a dropped
 * connection, and the server's resident memory may not keep growing once warmed up.
 * RELIABILITY_SOAK=0 skips it (it runs by default).
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { TIMEOUT } from '../helpers/timeouts.js'
import type { Api, ItemResult } from './support/api.js'
import { distinctImage } from './support/images.js'
import { rssOf, serviceEnv, spawnService, tempDirs, type Dirs, type SpawnedService } from './support/servers.js'

const SECONDS = Number(process.env.RELIABILITY_SOAK_SECONDS ?? 60)
const MAX_REQUESTS = Number(process.env.RELIABILITY_SOAK_REQUESTS ?? 10_000)
const CLIENTS = 6
const SKIP = process.env.RELIABILITY_SOAK === '0'
const WORDS = ['red', 'blue', 'circle', 'stripes', 'square', 'green', 'dark', 'light', 'checks', 'rings', 'cat', 'arrow', 'house', 'star']

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] ?? 0 }

describe('soak', { timeout: TIMEOUT.soak, skip: SKIP ? 'RELIABILITY_SOAK=0' : false }, () => {
  let dirs: Dirs
  let svc: SpawnedService
  let api: Api
  let dim = 0

  before(async () => {
    dirs = tempDirs('align-soak-')
    svc = await spawnService(serviceEnv(dirs, { CHECKPOINT_EVERY: '100' }))
    api = svc.api
    dim = (await api.get('/v1/info')).json.model.dim as number
    const seeds = await Promise.all(Array.from({ length: 16 }, async (_, i) => ({ id: `seed-${i}`, bytes: await distinctImage(70_000 + i) })))
    await api.uploadOk(seeds)
  })

  after(async () => {
    await svc?.server.stop()
    dirs?.remove()
  })

  test('mixed traffic: zero 5xx, zero dropped connections, bounded memory', async (t) => {
    const pid = svc.server.child.pid!
    const live: string[] = Array.from({ length: 16 }, (_, i) => `seed-${i}`)
    const statuses = new Map<string, number>()
    const failures: string[] = []
    let requests = 0
    let n = 0
    const start = performance.now()
    const stopAt = start + SECONDS * 1000
    const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)]!

    const samples: Array<{ t: number, rss: number }> = []
    const sampler = setInterval(() => {
      rssOf(pid).then((rss) => samples.push({ t: performance.now() - start, rss })).catch(() => {})
    }, 500)

    const one = async (): Promise<void> => {
      const r = Math.random()
      let what: string
      let res
      if (r < 0.40) {
        what = 'GET search'
        res = await api.get(`/v1/search?q=${encodeURIComponent(`${pick(WORDS)} ${pick(WORDS)}`)}&k=${1 + Math.floor(Math.random() * 50)}`)
      } else if (r < 0.55) {
        what = 'search by image'
        res = await api.search({ query: [{ imageId: pick(live) }], k: 10 })
      } else if (r < 0.63) {
        what = 'search by vector'
        res = await api.search({ query: [{ vector: Array.from({ length: dim }, () => Math.random() - 0.5) }, { text: pick(WORDS), weight: 0.3 }], k: 20, explain: true })
      } else if (r < 0.78) {
        what = 'upload'
        const files = await Promise.all(Array.from({ length: 1 + Math.floor(Math.random() * 3) }, async () => { const i = n++; return { id: `soak-${i}`, bytes: await distinctImage(80_000 + i) } }))
        res = await api.upload(files)
        if (res.status === 200) for (const it of res.json.items as ItemResult[]) if (it.status === 'indexed') live.push(it.id)
      } else if (r < 0.82 && live.length > 20) {
        what = 'delete'
        const victim = live.splice(Math.floor(Math.random() * live.length), 1)[0]!
        res = await api.del(`/v1/images/${victim}`)
      } else if (r < 0.90) {
        what = 'thumbnail'
        res = await api.get(`/v1/images/${pick(live)}/thumbnail`)
      } else if (r < 0.95) {
        what = 'texts'
        res = await api.post('/v1/texts', { texts: [{ text: `${pick(WORDS)} ${pick(WORDS)} ${n++}` }] })
      } else {
        what = 'info'
        res = await api.get(pick(['/v1/info', '/health', '/ready', '/metrics']))
      }
      const key = `${what} ${res.status}`
      statuses.set(key, (statuses.get(key) ?? 0) + 1)
      if (res.status >= 500) failures.push(`${what} answered ${res.status}: ${res.text.slice(0, 200)}`)
    }

    const client = async (): Promise<void> => {
      while (performance.now() < stopAt && requests < MAX_REQUESTS) {
        requests++
        try {
          await one()
        } catch (err) {
          failures.push(`request failed: ${(err as Error).message}`)
        }
      }
    }
    try {
      await Promise.all(Array.from({ length: CLIENTS }, client))
    } finally {
      clearInterval(sampler)
    }
    const elapsed = (performance.now() - start) / 1000
    const summary = `${requests} requests in ${elapsed.toFixed(1)} s: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`
    t.diagnostic(summary)
    assert.deepEqual(failures.slice(0, 20), [], summary)
    assert.ok(requests > 200, `too few requests for a soak: ${summary}`)
    await api.assertHealthy()

    // memory: compare the median RSS around the middle of the run with the median over its last tenth
    assert.ok(samples.length >= 8, `too few RSS samples (${samples.length})`)
    const span = samples[samples.length - 1]!.t
    const mid = median(samples.filter((s) => s.t >= span * 0.4 && s.t <= span * 0.6).map((s) => s.rss))
    const end = median(samples.filter((s) => s.t >= span * 0.9).map((s) => s.rss))
    const mb = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MB`
    t.diagnostic(`RSS: first ${mb(samples[0]!.rss)}, mid-run ${mb(mid)}, end ${mb(end)}, max ${mb(Math.max(...samples.map((s) => s.rss)))}`)
    assert.ok(end <= mid * 1.25, `RSS grew from ${mb(mid)} (mid-run) to ${mb(end)} (end): more than 25% over the second half. ${summary}`)

    // the exported metric agrees that the process is alive and measured
    const metrics = await api.get('/metrics')
    assert.equal(metrics.status, 200)
    assert.match(metrics.text, /process_resident_memory_bytes \d+/)
    // and what it stored adds up
    const counts = await api.counts()
    assert.equal(counts.images, live.length, summary)
  })
})
