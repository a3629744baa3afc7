import assert from 'node:assert/strict'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import pino from 'pino'
import { BadRequestError } from '../../../src/core/errors.js'
import { openServices } from '../../../src/main/wiring/open-services.js'
import type { ServicesConfig } from '../../../src/main/wiring/services-config.js'
import type { JobView, Services } from '../../../src/services/types.js'
import { fakeLoadEncoder, makeImage, type FakeEncoderOptions } from '../../helpers/fake-encoder.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

const base = mkdtempSync(path.join(tmpdir(), 'job-runner-'))
after(() => { rmSync(base, { recursive: true, force: true }) })
const logger = pino({ level: 'silent' })
let n = 0

function dirs (): { dataDir: string, importDir: string } {
  const d = path.join(base, `d${++n}`)
  const importDir = path.join(d, 'import')
  mkdirSync(importDir, { recursive: true })
  return { dataDir: path.join(d, 'data'), importDir }
}

function config (d: { dataDir: string, importDir: string }, enc: FakeEncoderOptions = {}): ServicesConfig {
  return {
    modelDir: 'unused-with-a-fake-encoder',
    dataDir: d.dataDir,
    importDir: d.importDir,
    executionProvider: 'cpu',
    encoderWorkers: 1,
    encoderThreads: 1,
    maxImagePixels: 100_000_000,
    hnsw: { M: 16, efConstruction: 100, efSearch: 64 },
    checkpointEvery: 1000,
    jobBatchSize: 8,
    loadEncoder: fakeLoadEncoder(enc)
  }
}

/** writes `count` distinct PNGs spread over sub-folders; returns their relative paths */
async function writeImages (importDir: string, count: number, from = 0): Promise<string[]> {
  const out: string[] = []
  for (let i = from; i < from + count; i++) {
    const rel = path.join(`set${i % 3}`, `img-${i}.png`)
    mkdirSync(path.dirname(path.join(importDir, rel)), { recursive: true })
    writeFileSync(path.join(importDir, rel), await makeImage(i))
    out.push(rel)
  }
  return out
}

async function finished (services: Services, id: string): Promise<JobView> {
  const view = await services.waitForJob!(id)
  assert.ok(view !== undefined)
  return view
}

describe('index jobs through the services', { timeout: TIMEOUT.unit }, () => {
  it('indexes every image of a directory, and a second run over it indexes nothing twice', async () => {
    const d = dirs()
    const files = await writeImages(d.importDir, 18)
    copyFileSync(path.join(d.importDir, files[0]!), path.join(d.importDir, 'copy-of-first.png'))
    writeFileSync(path.join(d.importDir, 'broken.png'), 'not really a png')
    writeFileSync(path.join(d.importDir, 'notes.txt'), 'ignored')
    const services = await openServices(config(d), logger)

    const first = await finished(services, await services.createJob({ directory: '.' }))
    assert.equal(first.status, 'done')
    assert.deepEqual({ total: first.total, done: first.done, failed: first.failed }, { total: 20, done: 19, failed: 1 })
    assert.equal(first.errors[0]?.item, 'broken.png')
    assert.match(first.errors[0]!.error, /not a supported image/)
    assert.equal((await services.stats()).images, 18)

    const again = await finished(services, await services.createJob({ directory: '.' }))
    assert.deepEqual({ status: again.status, done: again.done, failed: again.failed }, { status: 'done', done: 19, failed: 1 })
    assert.equal((await services.stats()).images, 18, 'nothing was indexed twice')

    const items = await finished(services, await services.createJob({ items: [{ path: files[1]!, metadata: { via: 'items' } }] }))
    assert.equal(items.done, 1)
    assert.equal((await services.stats()).images, 18)
    await services.close()
  })

  it('rejects job sources that leave IMPORT_DIR, naming the field', async () => {
    const d = dirs()
    await writeImages(d.importDir, 1)
    const services = await openServices(config(d), logger)
    const ok = { path: 'set0/img-0.png' }
    await assert.rejects(services.createJob({ items: [ok, ok, ok, { path: '../../etc/passwd' }] }), (err: Error) => err instanceof BadRequestError && /^items\[3\]\.path escapes/.test(err.message))
    await assert.rejects(services.createJob({ items: [{ path: '/etc/passwd' }] }), /items\[0\]\.path must be relative/)
    await assert.rejects(services.createJob({ directory: '../' }), /directory escapes/)
    await services.close()
  })

  it('cancels a running job after its current batch, and a queued one before it starts', async () => {
    const d = dirs()
    await writeImages(d.importDir, 60)
    let running = ''
    let calls = 0
    const services: Services = await openServices(config(d, {
      beforeEncode: async () => {
        if (++calls === 2) assert.equal((await services!.cancelJob(running))?.status, 'cancelled')
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    }), logger)
    running = await services.createJob({ directory: '.' })
    const queued = await services.createJob({ directory: 'set1' })
    const cancelledQueued = await services.cancelJob(queued)
    assert.equal(cancelledQueued?.status, 'cancelled')
    const view = await finished(services, running)
    assert.equal(view.status, 'cancelled')
    // batches are pipelined (two in flight): the one being encoded when cancelled, and any other
    // already ingesting, complete; none starts after; nothing committed is lost
    assert.ok(view.done >= 16 && view.done <= 24, `the batches in progress when cancelled complete (done ${view.done})`)
    assert.equal(view.done % 8, 0, 'whole batches only')
    assert.equal((await services.stats()).images, view.done)
    assert.equal((await services.getJob(queued))?.done, 0)
    assert.equal(await services.cancelJob('no-such-job'), undefined)
    await services.close()
  })

  // A graceful close, not a crash: the SIGKILL case is test/reliability/durability.test.ts's.
  it('resumes a job stopped by close() mid-way on the next open: every distinct image indexed once', async () => {
    const d = dirs()
    const files = await writeImages(d.importDir, 60)
    for (let i = 0; i < 5; i++) copyFileSync(path.join(d.importDir, files[i]!), path.join(d.importDir, `dup-${i}.png`))
    let closing: Promise<void> | undefined
    let calls = 0
    const first: Services = await openServices(config(d, {
      beforeEncode: () => { if (++calls === 3) closing = first.close() } // close while the third batch encodes
    }), logger)
    const id = await first.createJob({ directory: '.' })
    await first.waitForJob!(id)
    await closing
    assert.ok(closing !== undefined, 'the job was stopped mid-way')

    const second = await openServices(config(d), logger)
    const before = (await second.getJob(id))!
    assert.ok(before.done < 65, `stopped mid-way (done ${before.done})`)
    const view = await finished(second, id)
    assert.equal(view.status, 'done')
    assert.deepEqual({ total: view.total, done: view.done, failed: view.failed }, { total: 65, done: 65, failed: 0 })
    assert.equal((await second.stats()).images, 60)
    const [again] = await second.addImages([{ bytes: await makeImage(3) }])
    assert.equal(again!.status, 'duplicate')
    const hits = await second.search({ query: [{ imageId: again!.id }], target: 'images', k: 1, includeQueryImages: true })
    assert.equal(hits[0]!.id, again!.id)
    await second.close()
  })

  it('stages uploads under DATA_DIR/uploads/<job>/ with safe names, and removes them when done', async () => {
    const d = dirs()
    const services = await openServices(config(d), logger)
    const id = await services.createUploadJob([
      { bytes: await makeImage(1), filename: '../../../escape.png', id: 'up-1', metadata: { from: 'upload' } },
      { bytes: Buffer.from('plain text'), filename: 'notes.txt' },
      { bytes: await makeImage(2), filename: 'photo (2).png' }
    ])
    const staged = path.join(d.dataDir, 'uploads', id)
    const view = await finished(services, id)
    assert.deepEqual({ status: view.status, done: view.done, failed: view.failed }, { status: 'done', done: 2, failed: 1 })
    assert.equal(view.errors[0]?.item, 'notes.txt')
    assert.deepEqual((await services.getImage('up-1'))?.metadata, { from: 'upload' })
    assert.equal(existsSync(staged), false, 'staging folder removed')
    assert.deepEqual(readdirSync(path.join(d.dataDir, 'uploads')), [])
    assert.equal(existsSync(path.join(d.dataDir, '..', 'escape.png')), false)
    await assert.rejects(services.createUploadJob([{ bytes: Buffer.from('x'), filename: 'a', id: 'bad id' }]), /files\[0\]\.id/)
    await services.close()
  })
})
