import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import pino from 'pino'
import { NotFoundError } from '../../../src/core/errors.js'
import type { JobItemOutcome, JobStore } from '../../../src/backends/ports.js'
import { openSqliteBackend, type SqliteBackend } from '../../../src/backends/sqlite/open-sqlite-backend.js'
import { runIndexJob, type IngestFn, type IngestJobProgress, type IndexJobDeps } from '../../../src/jobs/index.js'
import type { IngestResult } from '../../../src/core/types.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

const base = mkdtempSync(path.join(tmpdir(), 'run-job-'))
after(() => { rmSync(base, { recursive: true, force: true }) })
const logger = pino({ level: 'silent' })
let n = 0

async function setup (files: number): Promise<{ backend: SqliteBackend, jobs: JobStore, root: string, dataDir: string }> {
  const dir = path.join(base, `d${++n}`)
  const root = path.join(dir, 'import')
  mkdirSync(root, { recursive: true })
  for (let i = 0; i < files; i++) writeFileSync(path.join(root, `f${String(i).padStart(3, '0')}.png`), `image ${i}`)
  const dataDir = path.join(dir, 'data')
  const backend = await openSqliteBackend({ dataDir, logger }, { modelId: 'm', dim: 4 })
  return { backend, jobs: backend.jobs, root, dataDir }
}

/** the job outcomes of an ingest's results, as the real ingest writes them with its images */
function outcomes (progress: IngestJobProgress, results: IngestResult[]): JobItemOutcome[] {
  return [...progress.known, ...progress.items.map(({ seq, item }, i): JobItemOutcome => {
    const r = results[i]!
    return r.status === 'failed' ? { seq, item, status: 'failed', error: r.error ?? 'failed' } : { seq, item, status: r.status }
  })]
}

/** an ingest that "stores" file contents in a list, and commits the job's progress in one write like the real one */
function recordingIngest (jobs: JobStore, seen: string[], hook?: (call: number) => Promise<void> | void): IngestFn {
  let calls = 0
  return async (items, { progress }) => {
    await hook?.(++calls)
    const results: IngestResult[] = items.map((it) => {
      const text = it.bytes.toString()
      if (text.includes('13')) return { id: '', status: 'failed', code: 'UNSUPPORTED_MEDIA_TYPE', error: 'not an image' }
      const dup = seen.includes(text)
      if (!dup) seen.push(text)
      return { id: text, status: dup ? 'duplicate' : 'indexed' }
    })
    await jobs.complete({ jobId: progress.jobId, outcomes: outcomes(progress, results) })
    return results
  }
}

function deps (t: { jobs: JobStore, dataDir: string }, rest: Pick<IndexJobDeps, 'ingest'> & Partial<IndexJobDeps>): IndexJobDeps {
  return { jobs: t.jobs, dataDir: t.dataDir, logger, ...rest }
}

describe('runIndexJob', { timeout: TIMEOUT.unit }, () => {
  it('processes every item in fixed batches, records failures, and marks the job done', async () => {
    const t = await setup(70)
    const items = Array.from({ length: 70 }, (_, i) => ({ path: `f${String(i).padStart(3, '0')}.png` }))
    items.push({ path: 'gone.png' })
    await t.jobs.create({ id: 'j', kind: 'items', source: { items: items.length }, root: t.root, items })
    const seen: string[] = []
    const batches: number[] = []
    const ingest: IngestFn = async (its, o) => { batches.push(its.length); return await recordingIngest(t.jobs, seen)(its, o) }
    const r = await runIndexJob('j', deps(t, { ingest, batchSize: 32 }))
    assert.deepEqual(batches, [32, 32, 6])
    assert.equal(r.status, 'done')
    assert.deepEqual({ total: r.total, done: r.done, failed: r.failed, indexed: r.indexed }, { total: 71, done: 69, failed: 2, indexed: 69 })
    const errors = (await t.jobs.view('j'))!.errors
    assert.deepEqual(errors.map((e) => e.item).sort(), ['f013.png', 'gone.png'])
    assert.match(errors.find((e) => e.item === 'gone.png')!.error, /file not found/)
    // running a finished job again does nothing
    assert.equal((await runIndexJob('j', deps(t, { ingest }))).indexed, 0)
    await assert.rejects(runIndexJob('nope', deps(t, { ingest })), NotFoundError)
    await t.backend.close()
  })

  it('stops after the current batch when aborted, and resumes exactly where it stopped', async () => {
    const t = await setup(100)
    await t.jobs.create({ id: 'j', kind: 'directory', source: { directory: '.' }, root: t.root })
    const seen: string[] = []
    const controller = new AbortController()
    const first = await runIndexJob('j', deps(t, { batchSize: 10, ingest: recordingIngest(t.jobs, seen, (call) => { if (call === 3) controller.abort() }) }), { signal: controller.signal })
    assert.equal(first.status, 'queued', 'an interrupted job goes back to the queue')
    assert.equal(first.total, 100)
    assert.equal(first.done + first.failed, 30)

    const second = await runIndexJob('j', deps(t, { batchSize: 10, ingest: recordingIngest(t.jobs, seen) }))
    assert.equal(second.status, 'done')
    assert.equal(second.done + second.failed, 100)
    assert.equal(seen.length, 99, 'each file ingested once (f013 fails)')
    await t.backend.close()
  })

  it('keeps a job cancelled meanwhile cancelled', async () => {
    const t = await setup(40)
    await t.jobs.create({ id: 'j', kind: 'directory', source: { directory: '.' }, root: t.root })
    const controller = new AbortController()
    const r = await runIndexJob('j', deps(t, {
      batchSize: 10,
      ingest: recordingIngest(t.jobs, [], async (call) => { if (call === 2) { await t.jobs.setStatus('j', 'cancelled'); controller.abort() } })
    }), { signal: controller.signal })
    assert.equal(r.status, 'cancelled')
    assert.equal(r.done + r.failed, 20)
    await t.backend.close()
  })

  it('warms the ingest path up once as the job starts, before it lists the folder or ingests a batch', async () => {
    const t = await setup(12)
    await t.jobs.create({ id: 'j', kind: 'directory', source: { directory: '.' }, root: t.root })
    const events: string[] = []
    const jobs = new Proxy(t.jobs, {
      get (target, key) {
        if (key === 'expand') return async (...args: Parameters<JobStore['expand']>) => { events.push('list'); await target.expand(...args) }
        const v = Reflect.get(target, key) as unknown
        return typeof v === 'function' ? v.bind(target) : v
      }
    })
    const record = recordingIngest(t.jobs, [])
    const r = await runIndexJob('j', { ...deps(t, { batchSize: 5, ingest: async (its, o) => { events.push('ingest'); return await record(its, o) } }), jobs, warmUp: () => { events.push('warm') } })
    assert.equal(r.status, 'done')
    assert.deepEqual(events, ['warm', 'list', 'ingest', 'ingest', 'ingest'])
    await t.backend.close()
  })

  it('fails the job, keeping its items pending, when ingest throws', async () => {
    const t = await setup(5)
    await t.jobs.create({ id: 'j', kind: 'directory', source: { directory: '.' }, root: t.root })
    const r = await runIndexJob('j', deps(t, { ingest: async () => { throw new Error('encoder crashed') } }))
    assert.equal(r.status, 'failed')
    assert.deepEqual((await t.jobs.view('j'))!.errors, [{ item: '(job)', error: 'encoder crashed' }])
    assert.equal((await t.jobs.pending('j', 10)).length, 5)
    await t.backend.close()
  })

  /**
   * An ingest that honours beforeCommit like the real one: batch k (1-based, of `batchSize` files)
   * "prepares" for delays[k - 1] ms, then waits its turn. Batches are named by their files, not by
   * call order: the batches' file reads may finish in either order, so ingest calls can swap.
   */
  function pipelinedIngest (jobs: JobStore, log: string[], delays: number[], batchSize: number, fail?: number): IngestFn {
    return async (items, { progress, beforeCommit }) => {
      const batch = Math.floor(Number(items[0]!.bytes.toString().replace('image ', '')) / batchSize) + 1
      log.push(`start ${batch}`)
      await new Promise((resolve) => setTimeout(resolve, delays[batch - 1] ?? 0))
      if (batch === fail) throw new Error(`batch ${batch} broke`)
      log.push(`prepared ${batch}`)
      await beforeCommit?.()
      const results: IngestResult[] = items.map((it) => ({ id: it.bytes.toString(), status: 'indexed' }))
      await jobs.complete({ jobId: progress.jobId, outcomes: outcomes(progress, results) })
      log.push(`committed ${batch}`)
      return results
    }
  }

  it('overlaps the next batch with the current one, and still commits them in order', async () => {
    const t = await setup(30)
    await t.jobs.create({ id: 'j', kind: 'directory', source: { directory: '.' }, root: t.root })
    const log: string[] = []
    // batch 1 is slow, batch 2 fast: 2 is prepared while 1 is still going, but waits to commit
    const r = await runIndexJob('j', deps(t, { batchSize: 10, ingest: pipelinedIngest(t.jobs, log, [60, 5, 5], 10) }))
    assert.equal(r.status, 'done')
    assert.equal(r.done, 30)
    assert.ok(log.indexOf('start 2') < log.indexOf('committed 1'), `batch 2 starts before batch 1 commits: ${log.join(', ')}`)
    assert.ok(log.indexOf('prepared 2') < log.indexOf('committed 1'), `batch 2 is prepared ahead: ${log.join(', ')}`)
    assert.deepEqual(log.filter((l) => l.startsWith('committed')), ['committed 1', 'committed 2', 'committed 3'])
    await t.backend.close()
  })

  it('with pipelineDepth 1 runs batches strictly one after another', async () => {
    const t = await setup(30)
    await t.jobs.create({ id: 'j', kind: 'directory', source: { directory: '.' }, root: t.root })
    const log: string[] = []
    await runIndexJob('j', deps(t, { batchSize: 10, pipelineDepth: 1, ingest: pipelinedIngest(t.jobs, log, [20, 5, 5], 10) }))
    assert.deepEqual(log, ['start 1', 'prepared 1', 'committed 1', 'start 2', 'prepared 2', 'committed 2', 'start 3', 'prepared 3', 'committed 3'])
    await t.backend.close()
  })

  it('a failed batch fails the job, and the batch prepared behind it is not committed', async () => {
    const t = await setup(30)
    await t.jobs.create({ id: 'j', kind: 'directory', source: { directory: '.' }, root: t.root })
    const log: string[] = []
    const r = await runIndexJob('j', deps(t, { batchSize: 10, ingest: pipelinedIngest(t.jobs, log, [40, 5, 5], 10, 1) }))
    assert.equal(r.status, 'failed')
    assert.equal(r.done, 0)
    assert.ok(log.includes('prepared 2'), 'batch 2 was prepared meanwhile')
    assert.ok(!log.includes('committed 2'))
    assert.equal((await t.jobs.pending('j', 100)).length, 30, 'every item stays pending for a retry')
    assert.deepEqual((await t.jobs.view('j'))!.errors, [{ item: '(job)', error: 'batch 1 broke' }])
    await t.backend.close()
  })
})
