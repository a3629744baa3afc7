/**
 * What a newcomer trips over (issue 26), through the routes over the real services (SQLite backend,
 * job runner, fake encoder): texts with and without a template are different entries; what is stored
 * can be listed page by page with a filter; the demo pool is tagged {"demo": true} and one call removes
 * it; a directory job counts what it skipped and warns when its folder holds no images.
 */
import assert from 'node:assert/strict'
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import type { InjectOptions } from 'fastify'
import { errorBody, json, multipart } from '../../helpers/build-app.js'
import { makeImage } from '../../helpers/fake-encoder.js'
import { buildRealApp, type RealApp } from '../../helpers/real-services-app.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

async function runJob ({ app, services }: RealApp, request: InjectOptions): Promise<any> {
  const res = await app.inject(request)
  assert.equal(res.statusCode, 202, res.body)
  const { jobId } = json(res)
  await services.waitForJob!(jobId)
  return json(await app.inject({ method: 'GET', url: `/v1/index-jobs/${jobId}` }))
}

const post = (url: string, payload: object): InjectOptions => ({ method: 'POST', url, payload })

describe('newcomer papercuts, round 2', { timeout: TIMEOUT.unit }, () => {
  it('POST /v1/texts: the same words with and without a template are two entries; the same words under another id answer the id that holds them', async (t) => {
    const { app } = await buildRealApp(t)
    let res = await app.inject(post('/v1/texts', { texts: [{ id: 'demo-pizza', text: 'pizza' }], template: 'an icon of {}' }))
    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual(json(res).items, [{ id: 'demo-pizza', status: 'indexed' }])
    res = await app.inject(post('/v1/texts', { texts: [{ id: 'my-pizza', text: 'pizza' }] }))
    assert.deepEqual(json(res).items, [{ id: 'my-pizza', status: 'indexed' }])
    // the same text through the same template is the same entry: the answer names the id that holds it
    res = await app.inject(post('/v1/texts', { texts: [{ id: 'other', text: 'pizza' }], template: 'an icon of {}' }))
    assert.deepEqual(json(res).items, [{ id: 'demo-pizza', status: 'duplicate' }])
    // the two entries rank differently (different vectors), and both are listed
    const list = json(await app.inject({ method: 'GET', url: '/v1/texts' }))
    assert.deepEqual(list.items.map((i: any) => [i.id, i.text]), [['demo-pizza', 'pizza'], ['my-pizza', 'pizza']])
    // a template must say where the text goes
    res = await app.inject(post('/v1/texts', { texts: [{ text: 'x' }], template: 'an icon of' }))
    assert.equal(res.statusCode, 400)
    assert.match(errorBody(res).message, /template/)
  })

  it('GET /v1/images and /v1/texts page by cursor with an exact-match filter; DELETE ?filter= removes what matches', async (t) => {
    const real = await buildRealApp(t)
    const { app } = real
    const parts = []
    for (let i = 0; i < 5; i++) parts.push(['id', `img-${i}`] as const, ['metadata', JSON.stringify({ album: i % 2 === 0 ? 'even' : 'odd' })] as const, ['file', { bytes: await makeImage(100 + i), filename: `${i}.png` }] as const)
    assert.equal((await app.inject({ method: 'POST', url: '/v1/images', ...await multipart(parts) })).statusCode, 200)

    const ids: string[] = []
    let url = '/v1/images?limit=2'
    for (let pages = 0; pages < 10; pages++) {
      const page = json(await app.inject({ method: 'GET', url }))
      ids.push(...page.items.map((i: any) => i.id))
      assert.ok(page.items.every((i: any) => i.source.endsWith('.png') && typeof i.createdAt === 'string'))
      if (page.next === null) break
      url = `/v1/images?limit=2&after=${encodeURIComponent(page.next)}`
    }
    assert.deepEqual(ids, ['img-0', 'img-1', 'img-2', 'img-3', 'img-4'])

    const even = json(await app.inject({ method: 'GET', url: `/v1/images?filter=${encodeURIComponent('{"album":"even"}')}` }))
    assert.deepEqual(even.items.map((i: any) => i.id), ['img-0', 'img-2', 'img-4'])
    assert.equal(even.next, null)

    let res = await app.inject({ method: 'GET', url: '/v1/images?filter=album' })
    assert.equal(res.statusCode, 400)
    assert.match(errorBody(res).message, /filter must be a JSON object/)
    res = await app.inject({ method: 'DELETE', url: `/v1/images?filter=${encodeURIComponent('{}')}` })
    assert.equal(res.statusCode, 400)

    res = await app.inject({ method: 'DELETE', url: `/v1/images?filter=${encodeURIComponent('{"album":"odd"}')}` })
    assert.deepEqual(json(res), { deleted: 2 })
    assert.deepEqual(json(await app.inject({ method: 'GET', url: '/v1/images' })).items.map((i: any) => i.id), ['img-0', 'img-2', 'img-4'])
    const hits = json(await app.inject(post('/v1/search', { query: [{ imageId: 'img-0' }], k: 10, includeQueryImages: true })))
    assert.deepEqual(hits.results.map((h: any) => h.id).sort(), ['img-0', 'img-2', 'img-4'])
  })

  it('the demo pool is tagged {"demo": true}, images and labels, and DELETE /v1/images?filter={"demo":true} removes only it', async (t) => {
    const demo = path.join(real0(t), 'demo')
    mkdirSync(demo, { recursive: true })
    for (const f of ['twemoji-cat-face.png', 'twemoji-dog.png']) copyFileSync(path.join('demo/pool', f), path.join(demo, f))
    writeFileSync(path.join(demo, 'manifest.jsonl'), '{"file":"twemoji-cat-face.png","label":"cat face","set":"twemoji"}\n')
    const real = await buildRealApp(t, { DEMO_POOL: demo })
    const { app, services } = real
    const jobs = json(await app.inject({ method: 'GET', url: '/v1/index-jobs' })).jobs
    await services.waitForJob!(jobs[0].id)
    await waitFor(async () => json(await app.inject({ method: 'GET', url: '/v1/texts' })).items.length === 1)
    const images = json(await app.inject({ method: 'GET', url: '/v1/images' })).items
    assert.deepEqual(images.map((i: any) => [i.id, i.metadata]), [
      ['twemoji-cat-face', { label: 'cat face', set: 'twemoji', demo: true }],
      ['twemoji-dog', { demo: true }]
    ])
    assert.deepEqual(json(await app.inject({ method: 'GET', url: '/v1/texts' })).items.map((i: any) => i.metadata), [{ label: 'cat face', demo: true }])
    await app.inject({ method: 'POST', url: '/v1/images', ...await multipart([['id', 'mine'], ['file', { bytes: await makeImage(7), filename: 'mine.png' }]]) })

    const res = await app.inject({ method: 'DELETE', url: `/v1/images?filter=${encodeURIComponent('{"demo":true}')}` })
    assert.deepEqual(json(res), { deleted: 2 })
    assert.deepEqual(json(await app.inject({ method: 'GET', url: '/v1/images' })).items.map((i: any) => i.id), ['mine'])
    assert.deepEqual(json(await app.inject({ method: 'DELETE', url: `/v1/texts?filter=${encodeURIComponent('{"demo":true}')}` })), { deleted: 1 })
  })

  it('a directory job counts the files it skipped, by reason, and an empty folder or one without images ends with a warning', async (t) => {
    const real = await buildRealApp(t)
    const dir = path.join(real.config.importDir, 'mixed')
    mkdirSync(path.join(dir, 'sub'), { recursive: true })
    writeFileSync(path.join(dir, 'a.png'), await makeImage(1))
    writeFileSync(path.join(dir, 'notes.txt'), 'hello')
    writeFileSync(path.join(dir, 'README'), 'no extension')
    writeFileSync(path.join(dir, 'sub', 'b.png'), await makeImage(2))
    writeFileSync(path.join(dir, 'sub', 'secret.png'), await makeImage(3))
    chmodSync(path.join(dir, 'sub', 'secret.png'), 0o000)
    const rootCanRead = process.getuid?.() === 0

    let view = await runJob(real, post('/v1/index-jobs', { directory: 'mixed' }))
    assert.equal(view.status, 'done')
    assert.equal(view.warning, undefined)
    assert.equal(view.skipped.notImage, 2)
    assert.deepEqual(view.skipped.paths.filter((p: any) => p.reason === 'not an image').map((p: any) => p.path), ['mixed/README', 'mixed/notes.txt'])
    // root reads a file without permissions: then it is indexed, not skipped
    assert.equal(view.skipped.unreadable, rootCanRead ? 0 : 1)
    assert.equal(view.total, rootCanRead ? 3 : 2)

    mkdirSync(path.join(real.config.importDir, 'empty'))
    view = await runJob(real, post('/v1/index-jobs', { directory: 'empty' }))
    assert.equal(view.status, 'done')
    assert.equal(view.total, 0)
    assert.equal(view.warning, 'the folder holds no files: nothing was indexed')

    mkdirSync(path.join(real.config.importDir, 'texts-only'))
    writeFileSync(path.join(real.config.importDir, 'texts-only', 'a.txt'), 'x')
    view = await runJob(real, post('/v1/index-jobs', { directory: 'texts-only' }))
    assert.equal(view.total, 0)
    assert.match(view.warning, /^the folder holds no images: nothing was indexed \(1 not an image by extension, 0 unreadable; e\.g\. texts-only\/a\.txt\)$/)
  })
})

/** a scratch folder for one test */
function real0 (t: { name: string }): string {
  const dir = path.join(process.env.TMPDIR ?? '/tmp', `align-newcomer-${process.pid}-${t.name.length}-${Date.now()}`)
  mkdirSync(dir, { recursive: true })
  return dir
}

async function waitFor (cond: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await cond()) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  assert.fail('condition not met')
}
