/**
 * The index queue's workers in one process, on a real PostgreSQL, with a stand-in ingest whose
 * duration and failures the test chooses:
 *   - a live worker keeps a batch that takes longer than the expiry (its heartbeat), so a second
 *     worker polling the same queue never runs it again;
 *   - a batch that fails every try fails its job, with the reason, through the dead letter queue.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pino } from 'pino'
import { openPostgresBackend, type PostgresBackend } from '../../../src/backends/postgres/open-postgres-backend.js'
import { PgIndexQueue } from '../../../src/backends/postgres/queue/pg-index-queue.js'
import { IndexWorker } from '../../../src/jobs/cluster/index-worker.js'
import { queueTiming } from '../../../src/backends/postgres/queue/queue-timing.js'
import type { IngestFn } from '../../../src/jobs/index.js'
import { startTestPostgres } from '../../../scripts/lib/postgres-server.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

const RETRY_AFTER_MS = 5000
const logger = pino({ level: 'silent' })
const pgServer = await startTestPostgres({ engine: 'server' })
const skip = 'url' in pgServer ? undefined : `no PostgreSQL: ${pgServer.skip}`

describe('index workers of one queue', { timeout: TIMEOUT.server, ...(skip === undefined ? {} : { skip }) }, () => {
  const importDir = mkdtempSync(path.join(tmpdir(), 'align-worker-'))
  let backend: PostgresBackend
  let queue: PgIndexQueue
  const running: IndexWorker[] = []

  const worker = (ingest: IngestFn): IndexWorker => {
    const w = new IndexWorker({ queue, jobs: backend.jobs, staging: backend.staging, ingest, logger, importDir, batchSize: 2 })
    running.push(w)
    w.start()
    return w
  }
  /** a job of `n` items whose files exist, queued */
  const job = async (id: string, n: number): Promise<void> => {
    const items = Array.from({ length: n }, (_, i) => ({ path: `${id}-${i}.png` }))
    for (const it of items) writeFileSync(path.join(importDir, it.path), `bytes of ${it.path}`)
    await backend.jobs.create({ id, kind: 'items', source: { items: n }, root: importDir, items })
    await queue.sendPlan(id)
  }
  const finished = async (id: string, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs
    while (!['done', 'failed', 'cancelled'].includes((await backend.jobs.view(id))?.status ?? '')) {
      if (Date.now() > deadline) throw new Error(`job ${id} did not finish in ${timeoutMs} ms`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  before(async () => {
    const url = 'url' in pgServer ? pgServer.url : ''
    backend = await openPostgresBackend({ databaseUrl: url, poolSize: 4 }, { modelId: 'test-model', dim: 4 })
    queue = await PgIndexQueue.open({ databaseUrl: url, retryAfterMs: RETRY_AFTER_MS, logger, retryLimit: 3, retryDelaySeconds: 1 })
  })

  after(async () => {
    for (const w of running) await w.close()
    await queue?.close()
    await backend?.close()
    if ('url' in pgServer) await pgServer.stop()
    rmSync(importDir, { recursive: true, force: true })
  })

  it('a batch that takes 2.5× the expiry stays with its live worker: a second worker never runs it again', async () => {
    const { expireInSeconds } = queueTiming(RETRY_AFTER_MS)
    const runs: number[][] = []
    const slow: IngestFn = async (items, { progress }) => {
      runs.push(progress.items.map((i) => i.seq))
      await new Promise((resolve) => setTimeout(resolve, 2.5 * expireInSeconds * 1000))
      await backend.jobs.complete({ jobId: progress.jobId, outcomes: progress.items.map((i) => ({ ...i, status: 'indexed' as const })) })
      return items.map(() => ({ id: 'x', status: 'indexed' as const }))
    }
    worker(slow)
    await job('slow', 2)
    // the second worker starts once the batch is held, and polls the queue while it runs
    while (runs.length === 0) await new Promise((resolve) => setTimeout(resolve, 20))
    worker(slow)
    await finished('slow', 60_000)
    assert.deepEqual(runs, [[0, 1]], 'the batch ran once')
    assert.deepEqual([(await backend.jobs.view('slow'))?.status, (await backend.jobs.view('slow'))?.done], ['done', 2])
  })

  it('a batch that fails every try fails its job, saying why', async () => {
    for (const w of running.splice(0)) await w.close()
    let tries = 0
    worker(async () => {
      tries++
      throw new Error('the disk is on fire')
    })
    await job('doomed', 2)
    await finished('doomed', 60_000)
    const view = await backend.jobs.view('doomed')
    assert.equal(view?.status, 'failed')
    assert.equal(tries, 4, 'tried once and retried three times (retryLimit 3)')
    assert.match(view?.errors.map((e) => e.error).join('\n') ?? '', /batch 0 \(items 0–1\) failed on every try: the disk is on fire/)
  })

  // pg-boss's createQueue deadlocked (40P01) when two workers started side by side (seen in CI's cluster test)
  it('the queue opens on a fresh database from several processes at once, five times over', async (t) => {
    if (!('url' in pgServer) || !pgServer.multiConnection) { t.skip('needs fresh databases of its own'); return }
    for (let round = 0; round < 5; round++) {
      const url = await pgServer.newDatabase()
      const queues = await Promise.all(Array.from({ length: 4 }, async () => await PgIndexQueue.open({ databaseUrl: url, retryAfterMs: RETRY_AFTER_MS, logger })))
      for (const q of queues) await q.close()
    }
  })
})
