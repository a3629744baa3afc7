/**
 * A bounded soak over loopback: 10 000 mixed search and indexing requests against the real server
 * process, from several clients at once. No request may fail with a 5xx or a dropped connection,
 * and the memory the server keeps may not grow by more than a small budget per request.
 *
 * Memory is read from the server itself, after forced full GCs (test/reliability/support/heap-probe.mjs,
 * preloaded only here), once after a warm-up and once at the end: a retained leak shows as growth
 * of heap + external memory, whereas RSS mostly measures the allocator and the collector's mood.
 * RELIABILITY_SOAK=0 skips it (it runs by default, and scripts/run-tests.ts names the skip).
 */
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { TIMEOUT } from '../helpers/timeouts.js'
import { sleep, type Api, type ItemResult } from './support/api.js'
import { distinctImage } from './support/images.js'
import { rssOf, serviceEnv, spawnService, tempDirs, type Dirs, type SpawnedService } from './support/servers.js'

/** the number the README promises */
const REQUESTS = 10_000
/** requests before the first memory reading: caches, JIT code and pools fill up first */
const WARM_UP = 1_000
/**
 * Retained growth allowed per request after the warm-up, bytes. Half of the smallest leak this test
 * must catch (2 KB per request), and far above what storing the soak's ~3 000 new images legitimately keeps.
 */
const HEAP_BUDGET_PER_REQUEST = 1024
/** a coarse guard for native leaks (ONNX, sharp, SQLite) that the V8 heap does not see, bytes per request */
const RSS_BUDGET_PER_REQUEST = 4 * 1024
const CLIENTS = 6
const SKIP = process.env.RELIABILITY_SOAK === '0'
const WORDS = ['red', 'blue', 'circle', 'stripes', 'square', 'green', 'dark', 'light', 'checks', 'rings', 'cat', 'arrow', 'house', 'star']

interface MemoryReading { seq: number, rss: number, heapUsed: number, external: number }

const mb = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MB`

describe('soak', { timeout: TIMEOUT.soak, skip: SKIP ? 'RELIABILITY_SOAK=0' : false }, () => {
  let dirs: Dirs
  let svc: SpawnedService
  let api: Api
  let dim = 0
  let probeFile: string
  let probes = 0

  /** Asks the server for a GC'd memory reading (SIGUSR2 → heap-probe) and waits for it. */
  async function readMemory (): Promise<MemoryReading> {
    const seq = ++probes
    svc.server.child.kill('SIGUSR2')
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      if (existsSync(probeFile)) {
        const reading = JSON.parse(readFileSync(probeFile, 'utf8')) as MemoryReading
        if (reading.seq === seq) return reading
      }
      await sleep(50)
    }
    throw new Error(`no memory reading ${seq} from the server:\n${svc.server.logs().slice(-2000)}`)
  }

  before(async () => {
    dirs = tempDirs('align-soak-')
    probeFile = path.join(dirs.root, 'heap.json')
    const probe = path.resolve('test/reliability/support/heap-probe.mjs')
    svc = await spawnService(serviceEnv(dirs, { CHECKPOINT_EVERY: '100', HEAP_PROBE_FILE: probeFile }), ['--expose-gc', '--import', probe])
    api = svc.api
    dim = (await api.get('/v1/info')).json.model.dim as number
    const seeds = await Promise.all(Array.from({ length: 16 }, async (_, i) => ({ id: `seed-${i}`, bytes: await distinctImage(70_000 + i) })))
    await api.uploadOk(seeds)
  })

  after(async () => {
    await svc?.server.stop()
    dirs?.remove()
  })

  test('10 000 requests of mixed traffic: zero 5xx, zero dropped connections, bounded memory', async (t) => {
    const pid = svc.server.child.pid!
    const live: string[] = Array.from({ length: 16 }, (_, i) => `seed-${i}`)
    const statuses = new Map<string, number>()
    const failures: string[] = []
    let sent = 0
    let answered = 0
    let n = 0
    const start = performance.now()
    const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)]!
    let maxRss = 0
    const sampler = setInterval(() => {
      rssOf(pid).then((rss) => { maxRss = Math.max(maxRss, rss) }).catch(() => {})
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

    /** CLIENTS clients, each sending its next request as soon as its last is answered, until `upTo` were sent */
    const run = async (upTo: number): Promise<void> => {
      const client = async (): Promise<void> => {
        while (sent < upTo) {
          sent++
          try {
            await one()
            answered++
          } catch (err) {
            failures.push(`request failed: ${(err as Error).message}`)
          }
        }
      }
      await Promise.all(Array.from({ length: CLIENTS }, client))
    }

    let warm: MemoryReading
    let end: MemoryReading
    try {
      await run(WARM_UP)
      warm = await readMemory()
      await run(REQUESTS)
      end = await readMemory()
    } finally {
      clearInterval(sampler)
    }
    const elapsed = (performance.now() - start) / 1000
    const summary = `${answered} of ${sent} requests answered in ${elapsed.toFixed(1)} s: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`
    t.diagnostic(summary)
    assert.deepEqual(failures.slice(0, 20), [], summary)
    assert.equal(answered, REQUESTS, `the soak promises ${REQUESTS} answered requests. ${summary}`)
    await api.assertHealthy()

    // memory kept by the server between the warm-up and the end, after forced GCs
    const measured = REQUESTS - WARM_UP
    const kept = (m: MemoryReading): number => m.heapUsed + m.external
    const growth = kept(end) - kept(warm)
    const rssGrowth = end.rss - warm.rss
    t.diagnostic(`after GC, heap + external: ${mb(kept(warm))} after the warm-up, ${mb(kept(end))} at the end ` +
      `(${(growth / measured).toFixed(0)} bytes per request; budget ${HEAP_BUDGET_PER_REQUEST})`)
    t.diagnostic(`RSS: ${mb(warm.rss)} after the warm-up, ${mb(end.rss)} at the end, max ${mb(maxRss)} ` +
      `(${(rssGrowth / measured).toFixed(0)} bytes per request; budget ${RSS_BUDGET_PER_REQUEST})`)
    assert.ok(growth <= HEAP_BUDGET_PER_REQUEST * measured,
      `the server kept ${mb(growth)} more heap + external memory after ${measured} requests ` +
      `(${(growth / measured).toFixed(0)} bytes per request; the budget is ${HEAP_BUDGET_PER_REQUEST}): a leak`)
    assert.ok(rssGrowth <= RSS_BUDGET_PER_REQUEST * measured,
      `RSS grew by ${mb(rssGrowth)} over ${measured} requests (${(rssGrowth / measured).toFixed(0)} bytes per request; ` +
      `the budget is ${RSS_BUDGET_PER_REQUEST}): a native leak?`)

    // the exported metric agrees that the process is alive and measured
    const metrics = await api.get('/metrics')
    assert.equal(metrics.status, 200)
    assert.match(metrics.text, /process_resident_memory_bytes \d+/)
    // and what it stored adds up
    const counts = await api.counts()
    assert.equal(counts.images, live.length, summary)
  })
})
