/**
 * Cluster index jobs under faults (issue 22), on a real PostgreSQL, with in-process workers and a
 * stand-in ingest that stores through the real backend (so commits, deletes and counts are real):
 *   - a plan handled twice (two workers at once, then a late second listing) resets nothing;
 *   - a batch past its wall-time cap goes back to the queue, saying why;
 *   - retries back off; a failed upload job keeps its staged files and can be resumed;
 *   - a batch whose every file is missing is retried, not failed item by item; a worker without
 *     its IMPORT_DIR takes no work;
 *   - queue retention is the configured one; the sweep re-sends batches the queue lost;
 *   - a late second commit of a batch cannot bring back an image deleted after the first;
 *   - a job whose plan could not be sent is planned by the sweep, with its files;
 *   - errors are appended rows; the staging cap answers 507.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { after, before, beforeEach, describe, it } from 'node:test'
import { pino } from 'pino'
import { QUEUES, type IndexQueue, type PlanMessage, type QueueMessage } from '../../../src/backends/index-queue.js'
import { openPostgresBackend, type PostgresBackend } from '../../../src/backends/postgres/open-postgres-backend.js'
import { PgStaging } from '../../../src/backends/postgres/pg-staging.js'
import { PgIndexQueue, QUEUE_SCHEMA } from '../../../src/backends/postgres/queue/pg-index-queue.js'
import { ClusterJobs } from '../../../src/jobs/cluster/cluster-jobs.js'
import { IndexWorker, type IndexWorkerDeps } from '../../../src/jobs/cluster/index-worker.js'
import type { IngestFn } from '../../../src/jobs/index.js'
import { startTestPostgres } from '../../../scripts/lib/postgres-server.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

const RETRY_AFTER_MS = 5000
const pgServer = await startTestPostgres({ engine: 'server' })
const skip = 'url' in pgServer ? undefined : `no PostgreSQL: ${pgServer.skip}`

/** a pino logger whose lines the test reads */
function capturedLogger (): { logger: pino.Logger, lines: () => Array<Record<string, unknown>> } {
  const out: string[] = []
  const stream = new Writable({ write (chunk, _enc, cb) { out.push(String(chunk)); cb() } })
  return { logger: pino({ level: 'debug' }, stream), lines: () => out.join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) }
}

describe('cluster index jobs under faults', { timeout: TIMEOUT.server, ...(skip === undefined ? {} : { skip }) }, () => {
  const importDir = mkdtempSync(path.join(tmpdir(), 'align-faults-'))
  const url = 'url' in pgServer ? pgServer.url : ''
  let backend: PostgresBackend
  let queue: PgIndexQueue
  const running: IndexWorker[] = []
  const opened: PgIndexQueue[] = []
  let log = capturedLogger()

  /** the real write path with a fake encoder: every file's bytes become an image (sha256 of the bytes) */
  const storing: IngestFn = async (items, { progress, beforeCommit }) => {
    const rows = items.map((it) => ({ sha256: createHash('sha256').update(it.bytes).digest('hex'), width: 1, height: 1, metadata: {}, embedding: new Float32Array([1, 0, 0, 0]), thumbnail: null, source: it.source ?? '' }))
    await beforeCommit?.()
    const writes = await backend.images.add(rows, { jobId: progress.jobId, outcomes: [...progress.known, ...progress.items.map((p, i) => ({ seq: p.seq, item: p.item, row: i }))] })
    return writes.map((w) => w.status === 'failed' ? { id: '', status: 'failed' as const, error: w.error, code: w.code } : { id: w.id, status: w.status })
  }
  const worker = (over: Partial<IndexWorkerDeps> = {}, q: IndexQueue = queue): IndexWorker => {
    const w = new IndexWorker({ queue: q, jobs: backend.jobs, staging: backend.staging, ingest: storing, logger: log.logger, importDir, batchSize: 2, ...over })
    running.push(w)
    w.start()
    return w
  }
  const files = (prefix: string, n: number, dir = importDir): Array<{ path: string }> => {
    const items = Array.from({ length: n }, (_, i) => ({ path: `${prefix}-${i}.png` }))
    for (const it of items) writeFileSync(path.join(dir, it.path), `bytes of ${prefix} ${it.path}`)
    return items
  }
  const finished = async (id: string, timeoutMs = 45_000): Promise<string> => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const status = (await backend.jobs.view(id))?.status ?? ''
      if (['done', 'failed', 'cancelled'].includes(status)) return status
      if (Date.now() > deadline) throw new Error(`job ${id} did not finish in ${timeoutMs} ms (${status})`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  const openQueue = async (opts: { retryLimit?: number, retryDelaySeconds?: number, retentionMinutes?: number } = {}): Promise<PgIndexQueue> => {
    const q = await PgIndexQueue.open({ databaseUrl: url, retryAfterMs: RETRY_AFTER_MS, logger: log.logger, ...opts })
    opened.push(q)
    return q
  }

  before(async () => {
    backend = await openPostgresBackend({ databaseUrl: url, poolSize: 6 }, { modelId: 'test-model', dim: 4 })
    queue = await openQueue({ retryLimit: 3, retryDelaySeconds: 1 })
  })
  beforeEach(async () => {
    for (const w of running.splice(0)) await w.close()
    log = capturedLogger()
  })
  after(async () => {
    for (const w of running) await w.close()
    for (const q of opened) await q.close()
    await backend?.close()
    if ('url' in pgServer) await pgServer.stop()
    rmSync(importDir, { recursive: true, force: true })
  })

  it('1. the same plan handed to two workers at once, then a late second listing: the job ends done with exact counts', async () => {
    mkdirSync(path.join(importDir, 'twice'))
    files('twice/p', 9)
    await backend.jobs.create({ id: 'twice', kind: 'directory', source: { directory: 'twice' }, root: importDir })
    const a = new IndexWorker({ queue, jobs: backend.jobs, staging: backend.staging, ingest: storing, logger: log.logger, importDir, batchSize: 2 })
    const b = new IndexWorker({ queue, jobs: backend.jobs, staging: backend.staging, ingest: storing, logger: log.logger, importDir, batchSize: 2 })
    const plan: QueueMessage<PlanMessage> = { id: 'p', data: { jobId: 'twice' }, retryCount: 0 }
    await Promise.all([a.handlers.plan(plan), b.handlers.plan(plan)])
    // one batch commits, then a planner that read `expanded = false` before it lists the job again
    const [first] = await backend.jobs.pending('twice', 2)
    assert.ok(first !== undefined)
    await backend.jobs.complete({ jobId: 'twice', outcomes: [{ seq: first.seq, item: first.item.path, status: 'failed', error: 'unreadable' }] })
    assert.equal(await backend.jobs.expand('twice', (await backend.jobs.pending('twice', 100)).map((p) => p.item)), false, 'a second listing is refused')
    worker()
    assert.equal(await finished('twice'), 'done')
    const view = await backend.jobs.view('twice')
    assert.deepEqual([view?.total, view?.done, view?.indexed, view?.failed], [9, 8, 8, 1])
  })

  it('2. a batch past INDEX_BATCH_TIMEOUT goes back to the queue, the log says why, and another try finishes it', async () => {
    let calls = 0
    const hangsOnce: IngestFn = async (items, opts) => {
      if (calls++ === 0) await new Promise(() => {}) // a read hung on a dead mount
      return await storing(items, opts)
    }
    worker({ ingest: hangsOnce, batchTimeoutMs: 1500 })
    const items = files('hang', 2)
    await backend.jobs.create({ id: 'hang', kind: 'items', source: { items: 1 }, root: importDir, items })
    await queue.sendPlan('hang')
    assert.equal(await finished('hang'), 'done')
    assert.deepEqual([(await backend.jobs.view('hang'))?.done, calls], [2, 2])
    const timedOut = log.lines().find((l) => l.msg === 'index worker: message timed out; the queue tries it again')
    assert.match(String(timedOut?.reason), /wall-time cap of 1500 ms/)
  })

  it('3a. retries back off: each wait about doubles', async () => {
    const tries: number[] = []
    worker({ ingest: async () => { tries.push(Date.now()); throw new Error('decoder died') } })
    const items = files('backoff', 2)
    await backend.jobs.create({ id: 'backoff', kind: 'items', source: { items: 1 }, root: importDir, items })
    await queue.sendPlan('backoff')
    assert.equal(await finished('backoff'), 'failed')
    assert.equal(tries.length, 4, 'tried once and retried three times')
    const waits = tries.slice(1).map((t, i) => t - tries[i]!)
    // backoff from 1 s: 1–2 s, 2–4 s, 4–8 s (plus a poll); a fixed delay gives three equal waits
    assert.ok(waits[2]! > 1.5 * waits[0]!, `waits ${waits.join(', ')} ms`)
    assert.match((await backend.jobs.view('backoff'))?.errors.map((e) => e.error).join('\n') ?? '', /failed on every try: decoder died/)
  })

  it('3b. a failed upload job keeps its staged files and resumes; a finished one loses them', async () => {
    let broken = true
    worker({ ingest: async (items, opts) => { if (broken) throw new Error('out of memory'); return await storing(items, opts) }, sweepMs: 300, keepFailedMs: 3_600_000 })
    const jobs = new ClusterJobs(queue, backend.jobs, backend.staging, undefined)
    await backend.staging.put('up', [{ path: '00000-a.png', bytes: Buffer.from('upload a') }, { path: '00001-b.png', bytes: Buffer.from('upload b') }])
    await jobs.submit({ id: 'up', kind: 'upload', source: { upload: 2 }, root: 'postgresql:staged_uploads', items: [{ path: '00000-a.png', name: 'a.png' }, { path: '00001-b.png', name: 'b.png' }] })
    assert.equal(await finished('up'), 'failed')
    await new Promise((resolve) => setTimeout(resolve, 900)) // sweeps run in between
    assert.equal((await backend.staging.read('up', ['00000-a.png', '00001-b.png'])).filter((b) => b !== undefined).length, 2, 'a failed job keeps its staged bytes')
    broken = false
    const resumed = await jobs.resume('up')
    assert.deepEqual([resumed.resumed, resumed.view?.status], [true, 'queued'])
    assert.equal(await finished('up'), 'done')
    assert.deepEqual([(await backend.jobs.view('up'))?.done, (await jobs.resume('up')).resumed], [2, false])
    assert.deepEqual(await backend.staging.read('up', ['00000-a.png']), [undefined], 'a finished job\'s staged bytes are removed')
  })

  it('4a. a batch whose every file is missing is retried (the mount came back), not failed item by item', async () => {
    worker()
    const items = Array.from({ length: 2 }, (_, i) => ({ path: `late-${i}.png` }))
    await backend.jobs.create({ id: 'late', kind: 'items', source: { items: 1 }, root: importDir, items })
    await queue.sendPlan('late')
    await new Promise((resolve) => setTimeout(resolve, 1500))
    files('late', 2)
    assert.equal(await finished('late'), 'done')
    assert.deepEqual([(await backend.jobs.view('late'))?.done, (await backend.jobs.view('late'))?.failed], [2, 0])
    assert.ok(log.lines().some((l) => String((l.err as { message?: string } | undefined)?.message).includes('files of the batch are missing')))
  })

  it('4b. a worker whose IMPORT_DIR is missing refuses work, and takes it once the folder is there', async () => {
    const mount = path.join(importDir, 'not-mounted')
    const w = worker({ importDir: mount })
    await backend.jobs.create({ id: 'mount', kind: 'items', source: { items: 1 }, root: mount, items: [{ path: 'm-0.png' }] })
    await queue.sendPlan('mount')
    await new Promise((resolve) => setTimeout(resolve, 1500))
    assert.equal((await backend.jobs.view('mount'))?.status, 'queued', 'nothing was claimed')
    assert.match(w.refusing ?? '', /IMPORT_DIR .*not-mounted is not readable here \(ENOENT\)/)
    mkdirSync(mount)
    files('m', 1, mount)
    assert.equal(await finished('mount'), 'done')
    assert.equal((await backend.jobs.view('mount'))?.failed, 0)
  })

  it('5. queue retention is the configured one; the sweep re-sends a running job\'s lost batches', async () => {
    const q = await openQueue({ retryLimit: 3, retryDelaySeconds: 1, retentionMinutes: 60 * 24 * 30 })
    const items = files('lost', 6)
    await backend.jobs.create({ id: 'lost', kind: 'items', source: { items: 1 }, root: importDir, items })
    const planner = new IndexWorker({ queue: q, jobs: backend.jobs, staging: backend.staging, ingest: storing, logger: log.logger, importDir, batchSize: 2 })
    await planner.handlers.plan({ id: 'p', data: { jobId: 'lost' }, retryCount: 0 })
    const pg = backend.pool
    const kept = await pg.query<{ days: number }>(`SELECT extract(epoch FROM keep_until - created_on)::float / 86400 AS days FROM ${QUEUE_SCHEMA}.job WHERE name = $1 AND data->>'jobId' = 'lost'`, [QUEUES.batch])
    assert.equal(kept.rows.length, 3)
    for (const r of kept.rows) assert.ok(Math.abs(r.days - 30) < 0.01, `kept ${r.days} days`)
    // the queue drops two of the three batches (as pg-boss does past keep_until)
    const dropped = await pg.query(`DELETE FROM ${QUEUE_SCHEMA}.job WHERE name = $1 AND data->>'jobId' = 'lost' AND (data->>'n')::int > 0`, [QUEUES.batch])
    assert.equal(dropped.rowCount, 2)
    worker({ sweepMs: 500 }, q)
    assert.equal(await finished('lost'), 'done')
    assert.equal((await backend.jobs.view('lost'))?.done, 6)
  })

  it('6. a late second commit of a batch after a delete does not bring the image back', async () => {
    const items = [{ path: 'del-0.png' }]
    await backend.jobs.create({ id: 'del', kind: 'items', source: { items: 1 }, root: importDir, items })
    const row = { sha256: createHash('sha256').update('del-0').digest('hex'), width: 1, height: 1, metadata: {}, embedding: new Float32Array([0, 1, 0, 0]), thumbnail: null, source: 'del-0.png' }
    const progress = { jobId: 'del', outcomes: [{ seq: 0, item: 'del-0.png', row: 0 }] }
    const [first] = await backend.images.add([row], progress) // worker A commits
    assert.equal(first?.status, 'indexed')
    assert.equal(await backend.images.remove((first as { id: string }).id), true) // the user deletes it
    await backend.images.add([row], progress) // worker B, thought dead, commits the same batch late
    assert.equal(await backend.images.get((first as { id: string }).id), undefined, 'the deleted image stays deleted')
    assert.deepEqual([(await backend.jobs.view('del'))?.done, (await backend.jobs.view('del'))?.indexed], [1, 1])
  })

  it('7. a job whose plan could not be sent is accepted with its files, and the sweep plans it', async () => {
    const failingPlan: IndexQueue = Object.assign(Object.create(queue) as IndexQueue, { sendPlan: async () => { throw new Error('connection reset') } })
    const jobs = new ClusterJobs(failingPlan, backend.jobs, backend.staging, undefined)
    await backend.staging.put('orphan', [{ path: '00000-o.png', bytes: Buffer.from('orphan bytes') }])
    await jobs.submit({ id: 'orphan', kind: 'upload', source: { upload: 1 }, root: 'postgresql:staged_uploads', items: [{ path: '00000-o.png', name: 'o.png' }] })
    assert.equal((await backend.jobs.view('orphan'))?.status, 'queued')
    worker({ sweepMs: 300 })
    assert.equal(await finished('orphan'), 'done')
    assert.deepEqual([(await backend.jobs.view('orphan'))?.done, (await backend.jobs.view('orphan'))?.failed], [1, 0])
  })

  it('8. errors are appended rows of job_notes (the job row holds no list); the staging cap answers 507', async () => {
    const cols = await backend.pool.query<{ column_name: string }>("SELECT column_name FROM information_schema.columns WHERE table_name = 'jobs' AND column_name IN ('errors', 'duplicates')")
    assert.deepEqual(cols.rows, [])
    const items = Array.from({ length: 4 }, (_, i) => ({ path: `e-${i}.png` }))
    await backend.jobs.create({ id: 'notes', kind: 'items', source: { items: 1 }, root: importDir, items })
    for (let seq = 0; seq < 4; seq++) await backend.jobs.complete({ jobId: 'notes', outcomes: [{ seq, item: `e-${seq}.png`, status: 'failed', error: `bad ${seq}` }] })
    const notes = await backend.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM job_notes WHERE job_id = 'notes' AND kind = 'error'")
    assert.equal(notes.rows[0]?.n, 4)
    assert.deepEqual((await backend.jobs.view('notes'))?.errors.map((e) => e.error), ['bad 0', 'bad 1', 'bad 2', 'bad 3'])

    // every byte value survives the round trip (a UTF-8 decode on the way would mangle those ≥ 0x80)
    const all = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256))
    await backend.staging.put('bytes', [{ path: 'all', bytes: all }])
    assert.deepEqual(await backend.staging.read('bytes', ['all', 'none']), [all, undefined])
    await backend.staging.remove('bytes')

    const capped = new PgStaging(backend.pool, 1000)
    await capped.put('cap-1', [{ path: 'a', bytes: Buffer.alloc(600) }])
    await assert.rejects(capped.put('cap-2', [{ path: 'b', bytes: Buffer.alloc(600) }]), (err: { statusCode?: number, code?: string }) => err.statusCode === 507 && err.code === 'INSUFFICIENT_STORAGE')
    assert.deepEqual(await capped.read('cap-2', ['b']), [undefined], 'a refused upload stages nothing')
    await capped.remove('cap-1')
  })
})
