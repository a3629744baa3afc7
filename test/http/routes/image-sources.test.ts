/**
 * Every image keeps where it came from: its path under IMPORT_DIR (index jobs) or the uploaded
 * file's name (POST /v1/images, multipart jobs), returned by GET /v1/images/:id and in search hits.
 * A directory job with idFromPath uses the path as the id.
 */
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import type { InjectOptions } from 'fastify'
import { errorBody, json, multipart } from '../../helpers/build-app.js'
import { imageVector, makeImage } from '../../helpers/fake-encoder.js'
import { buildRealApp, type RealApp } from '../../helpers/real-services-app.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

/** writes `files` (path under IMPORT_DIR → image seed) and returns their bytes by path */
async function importFiles ({ config }: RealApp, files: Record<string, number>): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>()
  for (const [rel, seed] of Object.entries(files)) {
    const full = path.join(config.importDir, rel)
    mkdirSync(path.dirname(full), { recursive: true })
    const bytes = await makeImage(seed)
    writeFileSync(full, bytes)
    out.set(rel, bytes)
  }
  return out
}

/** starts a job through the API and waits until it has finished; returns its view */
async function runJob ({ app, services }: RealApp, request: InjectOptions): Promise<any> {
  const res = await app.inject(request)
  assert.equal(res.statusCode, 202, res.body)
  const { jobId } = json(res)
  await services.waitForJob!(jobId)
  return json(await app.inject({ method: 'GET', url: `/v1/index-jobs/${jobId}` }))
}

async function record (app: RealApp['app'], id: string): Promise<any> {
  const res = await app.inject({ method: 'GET', url: `/v1/images/${encodeURIComponent(id)}` })
  assert.equal(res.statusCode, 200, res.body)
  return json(res)
}

describe('image sources', { timeout: TIMEOUT.unit }, () => {
  it('a directory job keeps each path under IMPORT_DIR, in the record and in search hits', async (t) => {
    const real = await buildRealApp(t)
    const bytes = await importFiles(real, { 'holiday-2024/sub/beach.png': 1, 'holiday-2024/top.png': 2 })
    const job = await runJob(real, { method: 'POST', url: '/v1/index-jobs', payload: { directory: 'holiday-2024' } })
    assert.equal(job.status, 'done')
    for (const [rel, b] of bytes) {
      const res = await real.app.inject({ method: 'POST', url: '/v1/search', payload: { query: [{ vector: [...imageVector(b)] }], k: 1 } })
      const [hit] = json(res).results
      assert.equal(hit.source, rel)
      const rec = await record(real.app, hit.id)
      assert.equal(rec.source, rel)
      assert.match(rec.id, /^[0-9a-f]{24}$/, 'without idFromPath the id is made from the content')
    }
  })

  it('an items job keeps each path, and `npm run index` (a directory job over ".") the path under its folder', async (t) => {
    const real = await buildRealApp(t)
    await importFiles(real, { 'a/one.png': 3, 'b/two.png': 4 })
    await runJob(real, { method: 'POST', url: '/v1/index-jobs', payload: { items: [{ path: 'a/one.png', id: 'one' }] } })
    assert.equal((await record(real.app, 'one')).source, 'a/one.png')
    await runJob(real, { method: 'POST', url: '/v1/index-jobs', payload: { directory: '.', idFromPath: true } })
    assert.equal((await record(real.app, 'b:two.png')).source, 'b/two.png')
  })

  it('uploads keep their file name: POST /v1/images and a multipart job', async (t) => {
    const real = await buildRealApp(t)
    const res = await real.app.inject({ method: 'POST', url: '/v1/images', ...await multipart([['file', { bytes: await makeImage(5), filename: 'my cat.png' }]]) })
    assert.equal(res.statusCode, 200, res.body)
    const [item] = json(res).items
    assert.equal(item.status, 'indexed')
    assert.equal((await record(real.app, item.id)).source, 'my cat.png')
    const job = await runJob(real, { method: 'POST', url: '/v1/index-jobs', ...await multipart([['id', 'dog'], ['file', { bytes: await makeImage(6), filename: 'Dog at the beach.JPG.png' }]]) })
    assert.equal(job.status, 'done')
    assert.equal((await record(real.app, 'dog')).source, 'Dog at the beach.JPG.png')
  })

  it('idFromPath: the path is the id ("/" as ":", other characters an id may not hold as "_"); too long a path fails that file', async (t) => {
    const real = await buildRealApp(t)
    const long = `holiday-2024/${'x'.repeat(130)}.png`
    await importFiles(real, { 'holiday-2024/sub/beach.png': 7, 'holiday-2024/my photo (1).png': 8, [long]: 9 })
    const job = await runJob(real, { method: 'POST', url: '/v1/index-jobs', payload: { directory: 'holiday-2024', idFromPath: true } })
    assert.deepEqual({ status: job.status, total: job.total, done: job.done, failed: job.failed }, { status: 'done', total: 3, done: 2, failed: 1 })
    assert.equal(job.errors[0].item, long)
    assert.match(job.errors[0].error, /the path cannot be the id .*: an id must be 1–128 characters, got 1\d\d/)
    assert.equal((await record(real.app, 'holiday-2024:sub:beach.png')).source, 'holiday-2024/sub/beach.png')
    assert.equal((await record(real.app, 'holiday-2024:my_photo__1_.png')).source, 'holiday-2024/my photo (1).png')
  })

  it('refuses idFromPath on an items job, in the error shape', async (t) => {
    const real = await buildRealApp(t)
    await importFiles(real, { 'a.png': 10 })
    const res = await real.app.inject({ method: 'POST', url: '/v1/index-jobs', payload: { items: [{ path: 'a.png' }], idFromPath: true } })
    assert.equal(res.statusCode, 400)
    assert.match(errorBody(res).message, /idFromPath applies to directory jobs only/)
  })
})
