import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildTestApp, errorBody, json, multipart } from '../../helpers/build-app.js'
import { fakeImage } from '../../helpers/fake-services.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

describe('/v1/index-jobs', { timeout: TIMEOUT.unit }, () => {
  it('starts a directory job: 202 with the job id and its location', async (t) => {
    const { app, services } = await buildTestApp(t)
    const res = await app.inject({ method: 'POST', url: '/v1/index-jobs', payload: { directory: 'photos/2023' } })
    assert.equal(res.statusCode, 202)
    const { jobId } = json(res)
    assert.equal(typeof jobId, 'string')
    assert.equal(res.headers.location, `/v1/index-jobs/${jobId}`)
    assert.deepEqual(services.calls.at(-1), ['createJob', { directory: 'photos/2023' }])
  })

  it('passes idFromPath of a directory job on, and refuses it on an items job', async (t) => {
    const { app, services } = await buildTestApp(t)
    let res = await app.inject({ method: 'POST', url: '/v1/index-jobs', payload: { directory: 'photos', idFromPath: true } })
    assert.equal(res.statusCode, 202)
    assert.deepEqual(services.calls.at(-1), ['createJob', { directory: 'photos', idFromPath: true }])
    res = await app.inject({ method: 'POST', url: '/v1/index-jobs', payload: { items: [{ path: 'a.png' }], idFromPath: true } })
    assert.equal(res.statusCode, 400)
    assert.match(errorBody(res).message, /^idFromPath applies to directory jobs only/)
    res = await app.inject({ method: 'POST', url: '/v1/index-jobs', payload: { directory: 'photos', idFromPath: 'yes' } })
    assert.equal(res.statusCode, 400)
    assert.match(errorBody(res).message, /^body\/idFromPath must be boolean$/)
  })

  it('starts an items job', async (t) => {
    const { app, services } = await buildTestApp(t)
    const items = [{ path: 'a.jpg', id: 'a', metadata: { album: 'x' } }, { path: 'sub/b.png' }]
    const res = await app.inject({ method: 'POST', url: '/v1/index-jobs', payload: { items } })
    assert.equal(res.statusCode, 202)
    assert.deepEqual(services.calls.at(-1), ['createJob', { items }])
  })

  it('refuses a body without exactly one source', async (t) => {
    const { app } = await buildTestApp(t)
    const cases: Array<[unknown, RegExp]> = [
      [{}, /exactly one of "items" or "directory"/],
      [{ directory: 'a', items: [{ path: 'b' }] }, /exactly one of "items" or "directory"/],
      [{ items: [] }, /^body\/items must NOT have fewer than 1 items$/],
      [{ items: [{ id: 'x' }] }, /^body\/items\/0 must have required property 'path'; expected fields: path \(required\), id, metadata$/],
      [{ items: [{ path: 'a', id: 'no spaces' }] }, /^body\/items\/0\/id must match pattern/],
      [{ directory: '' }, /^body\/directory must NOT have fewer than 1 characters$/],
      [{ folder: 'x' }, /^body must NOT have additional properties: 'folder'; expected fields: items, directory, idFromPath$/],
      // what a newcomer tried: the message names the fields a job takes
      [{ path: 'mine' }, /^body must NOT have additional properties: 'path'; expected fields: items, directory, idFromPath$/]
    ]
    for (const [payload, message] of cases) {
      const res = await app.inject({ method: 'POST', url: '/v1/index-jobs', payload: payload as object })
      assert.equal(res.statusCode, 400, res.body)
      assert.match(errorBody(res).message, message)
    }
  })

  it('passes a service-side refusal through (e.g. a path outside IMPORT_DIR)', async (t) => {
    const { app, services } = await buildTestApp(t)
    services.createJob = () => { throw Object.assign(new Error('directory escapes IMPORT_DIR ("../etc")'), { statusCode: 400, code: 'BAD_REQUEST' }) }
    const res = await app.inject({ method: 'POST', url: '/v1/index-jobs', payload: { directory: '../etc' } })
    assert.equal(res.statusCode, 400)
    assert.equal(errorBody(res).message, 'directory escapes IMPORT_DIR ("../etc")')
  })

  it('accepts a multipart upload: files with their id/metadata fields', async (t) => {
    const { app, services } = await buildTestApp(t)
    const form = await multipart([
      ['id', 'one'], ['metadata', '{"k":"v"}'], ['file', { bytes: fakeImage(1), filename: 'one.png' }],
      ['file', { bytes: fakeImage(2), filename: 'two.png' }]
    ])
    const res = await app.inject({ method: 'POST', url: '/v1/index-jobs', ...form })
    assert.equal(res.statusCode, 202, res.body)
    const [method, files] = services.calls.at(-1) as [string, any[]]
    assert.equal(method, 'createUploadJob')
    assert.equal(files.length, 2)
    assert.deepEqual({ id: files[0].id, metadata: files[0].metadata, filename: files[0].filename }, { id: 'one', metadata: { k: 'v' }, filename: 'one.png' })
    assert.ok(files[1].bytes.equals(fakeImage(2)))
    assert.equal(files[1].id, undefined)
  })

  it('refuses an upload with no file, and one above MAX_JOB_FILES', async (t) => {
    const { app } = await buildTestApp(t, { MAX_JOB_FILES: '2' })
    let res = await app.inject({ method: 'POST', url: '/v1/index-jobs', ...await multipart([]) })
    assert.equal(res.statusCode, 400)
    assert.match(errorBody(res).message, /no file/)
    const f = (i: number) => ['file', { bytes: fakeImage(i), filename: `${i}.png` }] as const
    res = await app.inject({ method: 'POST', url: '/v1/index-jobs', ...await multipart([f(1), f(2), f(3)]) })
    assert.equal(res.statusCode, 413)
    assert.equal(errorBody(res).message, 'too many files: at most 2 files per request')
  })

  it('reads and cancels a job; unknown ids are 404', async (t) => {
    const { app } = await buildTestApp(t)
    const { jobId } = json(await app.inject({ method: 'POST', url: '/v1/index-jobs', payload: { items: [{ path: 'a.png' }] } }))
    let res = await app.inject({ method: 'GET', url: `/v1/index-jobs/${jobId}` })
    assert.equal(res.statusCode, 200)
    const view = json(res)
    assert.deepEqual(Object.keys(view).sort(), ['createdAt', 'done', 'duplicate', 'duplicates', 'errors', 'failed', 'id', 'indexed', 'skipped', 'status', 'total', 'updatedAt'])
    assert.equal(view.status, 'queued')
    assert.equal(view.total, 1)
    res = await app.inject({ method: 'DELETE', url: `/v1/index-jobs/${jobId}` })
    assert.equal(res.statusCode, 200)
    assert.equal(json(res).status, 'cancelled')
    for (const method of ['GET', 'DELETE'] as const) {
      res = await app.inject({ method, url: '/v1/index-jobs/job_nope' })
      assert.equal(res.statusCode, 404)
      assert.equal(errorBody(res).message, 'index job "job_nope" not found')
    }
  })
})
