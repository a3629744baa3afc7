/**
 * A job's view says what happened to its items: indexed, duplicate (naming the stored id) and
 * failed, with done = indexed + duplicate. A duplicate upload names the id its bytes are stored under.
 */
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import type { InjectOptions } from 'fastify'
import { json, multipart } from '../../helpers/build-app.js'
import { makeImage } from '../../helpers/fake-encoder.js'
import { buildRealApp, type RealApp } from '../../helpers/real-services-app.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

/** starts a job through the API, waits until it has finished, and returns its view */
async function runJob ({ app, services }: RealApp, request: InjectOptions): Promise<any> {
  const res = await app.inject(request)
  assert.equal(res.statusCode, 202, res.body)
  const { jobId } = json(res)
  await services.waitForJob!(jobId)
  const view = await app.inject({ method: 'GET', url: `/v1/index-jobs/${jobId}` })
  assert.equal(view.statusCode, 200, view.body)
  return json(view)
}

const counts = (v: any): object => ({ status: v.status, total: v.total, done: v.done, indexed: v.indexed, duplicate: v.duplicate, failed: v.failed })

describe('job counts', { timeout: TIMEOUT.unit }, () => {
  it('a multipart job with -F id=rot-brick whose bytes are stored under another id: duplicate 1, naming that id', async (t) => {
    const real = await buildRealApp(t)
    const brick = await makeImage(42)
    let res = await real.app.inject({ method: 'POST', url: '/v1/images', ...await multipart([['id', 'brick'], ['file', { bytes: brick, filename: 'brick.png' }]]) })
    assert.equal(json(res).items[0].status, 'indexed')

    const view = await runJob(real, { method: 'POST', url: '/v1/index-jobs', ...await multipart([['id', 'rot-brick'], ['file', { bytes: brick, filename: 'rot-brick.png' }]]) })
    assert.deepEqual(counts(view), { status: 'done', total: 1, done: 1, indexed: 0, duplicate: 1, failed: 0 })
    assert.deepEqual(view.duplicates, [{ item: 'rot-brick.png', id: 'brick' }])
    assert.deepEqual(view.errors, [])
    // nothing was stored under the id the upload asked for
    assert.equal((await real.app.inject({ method: 'GET', url: '/v1/images/rot-brick' })).statusCode, 404)
    // the list shows the same split
    const listed = json(await real.app.inject({ method: 'GET', url: '/v1/index-jobs?limit=1' })).jobs[0]
    assert.deepEqual([counts(listed), listed.duplicates], [counts(view), view.duplicates])

    // the synchronous upload says the same per item: a duplicate, with the stored id
    res = await real.app.inject({ method: 'POST', url: '/v1/images', ...await multipart([['id', 'rot-brick'], ['file', { bytes: brick, filename: 'rot-brick.png' }]]) })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(json(res).items, [{ id: 'brick', status: 'duplicate', filename: 'rot-brick.png' }])
  })

  it('a directory job splits indexed, duplicate (of a stored image, or of a file earlier in the job) and failed', async (t) => {
    const real = await buildRealApp(t)
    const dir = path.join(real.config.importDir, 'shots')
    mkdirSync(dir, { recursive: true })
    const a = await makeImage(1)
    const stored = await makeImage(2)
    writeFileSync(path.join(dir, 'a.png'), a)
    writeFileSync(path.join(dir, 'b-copy-of-a.png'), a)
    writeFileSync(path.join(dir, 'c.png'), stored)
    writeFileSync(path.join(dir, 'd.png'), await makeImage(3))
    writeFileSync(path.join(dir, 'e-broken.png'), 'not an image')
    await real.services.addImages([{ bytes: stored, id: 'stored-before' }])

    const view = await runJob(real, { method: 'POST', url: '/v1/index-jobs', payload: { directory: 'shots', idFromPath: true } })
    assert.deepEqual(counts(view), { status: 'done', total: 5, done: 4, indexed: 2, duplicate: 2, failed: 1 })
    assert.deepEqual(view.duplicates, [{ item: 'shots/b-copy-of-a.png', id: 'shots:a.png' }, { item: 'shots/c.png', id: 'stored-before' }])
    assert.deepEqual(view.errors.map((e: any) => e.item), ['shots/e-broken.png'])

    // running it again finds everything stored: all duplicates, each naming its stored id
    const again = await runJob(real, { method: 'POST', url: '/v1/index-jobs', payload: { directory: 'shots', idFromPath: true } })
    assert.deepEqual(counts(again), { status: 'done', total: 5, done: 4, indexed: 0, duplicate: 4, failed: 1 })
    assert.deepEqual(again.duplicates.map((d: any) => `${d.item as string} → ${d.id as string}`), [
      'shots/a.png → shots:a.png', 'shots/b-copy-of-a.png → shots:a.png', 'shots/c.png → stored-before', 'shots/d.png → shots:d.png'
    ])
  })
})
