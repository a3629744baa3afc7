/**
 * /v1/backups over the real services (SQLite backend, fake encoder): write one while serving,
 * list it, download the very file, delete it; the write key guards all four; a backend without
 * backups (PostgreSQL) answers 501 saying to use pg_dump.
 */
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, it } from 'node:test'
import { restoreBackup } from '../../../src/backends/sqlite/backup/index.js'
import { errorBody, json } from '../../helpers/build-app.js'
import { buildRealApp, withHealth } from '../../helpers/real-services-app.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

const demo = path.resolve('demo/pool')

describe('/v1/backups', { timeout: TIMEOUT.server }, () => {
  it('writes a backup while serving, lists it, downloads the same bytes and deletes it', async (t) => {
    const { app, services, config } = await buildRealApp(t)
    const names = (await readdir(demo)).filter((n) => n.endsWith('.png')).slice(0, 12)
    await services.addImages(await Promise.all(names.map(async (n) => ({ bytes: await readFile(path.join(demo, n)), source: n }))))
    await services.addTexts([{ text: 'cat face' }, { text: 'red heart' }])

    const created = await app.inject({ method: 'POST', url: '/v1/backups' })
    assert.equal(created.statusCode, 201, created.body)
    const info = json(created) as { name: string, bytes: number, images: number, texts: number, scheduled: boolean, unfinishedJobs: unknown[] }
    assert.equal(info.images, 12)
    assert.equal(info.texts, 2)
    assert.equal(info.scheduled, false)
    assert.deepEqual(info.unfinishedJobs, [])
    assert.equal(created.headers.location, `/v1/backups/${info.name}`)
    const onDisk = path.join(config.backupDir, info.name)
    assert.equal((await readFile(onDisk)).length, info.bytes)
    assert.equal(path.dirname(onDisk), path.join(config.dataDir, 'backups'), 'BACKUP_DIR defaults to DATA_DIR/backups')

    const list = json(await app.inject({ url: '/v1/backups' })) as { backups: Array<{ name: string }> }
    assert.deepEqual(list.backups.map((b) => b.name), [info.name])

    const download = await app.inject({ url: `/v1/backups/${info.name}` })
    assert.equal(download.statusCode, 200)
    assert.equal(download.headers['content-type'], 'application/x-tar')
    assert.match(String(download.headers['content-disposition']), new RegExp(`attachment; filename="${info.name}"`))
    assert.ok(download.rawPayload.equals(await readFile(onDisk)), 'the download is the file')

    // the downloaded file restores
    const target = path.join(config.dataDir, '..', 'restored')
    const { manifest } = await restoreBackup(onDisk, target, { modelId: services.model.modelId, dim: services.model.embeddingDim })
    assert.equal(manifest.images, 12)

    assert.equal((await app.inject({ method: 'DELETE', url: `/v1/backups/${info.name}` })).statusCode, 204)
    const gone = await app.inject({ url: `/v1/backups/${info.name}` })
    assert.equal(gone.statusCode, 404)
    assert.equal(errorBody(gone).code, 'NOT_FOUND')
    assert.equal((await app.inject({ method: 'DELETE', url: `/v1/backups/${info.name}` })).statusCode, 404)
    assert.equal((await app.inject({ url: '/v1/backups/..%2F..%2Falign-search.db' })).statusCode, 404, 'a name is a name, never a path')
  })

  it('needs the write key for every backup route when API_KEY is set', async (t) => {
    const { app } = await buildRealApp(t, { API_KEY: 'secret-key-0123456789' })
    for (const [method, url] of [['POST', '/v1/backups'], ['GET', '/v1/backups'], ['GET', '/v1/backups/x.tar'], ['DELETE', '/v1/backups/x.tar']] as const) {
      const res = await app.inject({ method, url })
      assert.equal(res.statusCode, 401, `${method} ${url}`)
    }
    const ok = await app.inject({ method: 'POST', url: '/v1/backups', headers: { authorization: 'Bearer secret-key-0123456789' } })
    assert.equal(ok.statusCode, 201)
  })

  it('answers 501 with the way to back up where the backend has no backups of its own (PostgreSQL)', async (t) => {
    const { app } = await buildRealApp(t, {}, (b) => withHealth(b, async () => ({ ok: true })))
    for (const [method, url] of [['POST', '/v1/backups'], ['GET', '/v1/backups']] as const) {
      const res = await app.inject({ method, url })
      assert.equal(res.statusCode, 501)
      const body = errorBody(res)
      assert.equal(body.code, 'NOT_IMPLEMENTED')
      assert.match(body.message, /pg_dump/)
    }
  })
})
