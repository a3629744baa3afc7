/**
 * The real server process over a real socket: real model (models/align-mini), temp DATA_DIR,
 * real images from the demo pool. Index, search, read a thumbnail, shut down gracefully,
 * restart and find the index again.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { startServer, type RunningServer } from './helpers/spawn-server.js'
import { TIMEOUT } from './helpers/timeouts.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const HAS_SERVICES = existsSync(path.join(ROOT, 'src/services/index.ts'))
const POOL = path.join(ROOT, 'demo/pool')
const IMAGES = ['twemoji-cat-face.png', 'twemoji-automobile.png', 'twemoji-pizza.png']

describe('the server process', {
  timeout: TIMEOUT.server,
  skip: HAS_SERVICES ? false : 'src/services/index.ts (the core services) does not exist yet: nothing to start'
}, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'align-server-'))
  const env = {
    DATA_DIR: path.join(dir, 'data'),
    IMPORT_DIR: path.join(dir, 'import'),
    MODEL_DIR: path.join(ROOT, 'models/align-mini'),
    DEMO_POOL: '',
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1'
  }
  let server: RunningServer | undefined
  after(async () => {
    await server?.kill()
    rmSync(dir, { recursive: true, force: true })
  })

  it('indexes and searches real images over HTTP, then shuts down gracefully', async () => {
    server = await startServer(env, { timeoutMs: TIMEOUT.model })
    const { url } = server

    let res = await fetch(`${url}/health`)
    assert.equal(res.status, 200)
    const info = await (await fetch(`${url}/v1/info`)).json() as any
    assert.equal(info.model.modelId, 'align-mini-v1')
    assert.equal(info.model.dim, 256)
    assert.deepEqual(info.counts, { images: 0, texts: 0 })

    const form = new FormData()
    for (const name of IMAGES) {
      form.append('id', path.basename(name, '.png'))
      form.append('metadata', JSON.stringify({ file: name }))
      form.append('file', new Blob([readFileSync(path.join(POOL, name))], { type: 'image/png' }), name)
    }
    form.append('file', new Blob([Buffer.from('not an image')], { type: 'text/plain' }), 'notes.txt')
    res = await fetch(`${url}/v1/images`, { method: 'POST', body: form })
    assert.equal(res.status, 200, await res.clone().text())
    const { items } = await res.json() as any
    assert.deepEqual(items.map((i: any) => i.status), ['indexed', 'indexed', 'indexed', 'failed'])
    assert.deepEqual(items.slice(0, 3).map((i: any) => i.id), ['twemoji-cat-face', 'twemoji-automobile', 'twemoji-pizza'])

    // text → image: the promise of the product
    res = await fetch(`${url}/v1/search?q=${encodeURIComponent('a cat')}&k=3`)
    assert.equal(res.status, 200)
    const search = await res.json() as any
    assert.equal(search.model, 'align-mini-v1')
    assert.equal(search.results.length, 3)
    assert.equal(search.results[0].id, 'twemoji-cat-face')
    assert.deepEqual(search.results[0].metadata, { file: 'twemoji-cat-face.png' })

    // image → image, by id, with a negative term and explain
    res = await fetch(`${url}/v1/search`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: [{ imageId: 'twemoji-pizza' }, { text: 'a car', weight: -0.2 }], k: 2, explain: true })
    })
    assert.equal(res.status, 200)
    const similar = await res.json() as any
    assert.equal(similar.results[0].id, 'twemoji-pizza')
    assert.equal(similar.results[0].terms.length, 2)

    res = await fetch(`${url}/v1/images/twemoji-cat-face/thumbnail`)
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-type'), 'image/webp')
    assert.equal(Buffer.from(await res.arrayBuffer()).subarray(8, 12).toString('latin1'), 'WEBP')

    res = await fetch(`${url}/v1/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":[{"text":"a"}],"k":0}' })
    assert.equal(res.status, 400)
    assert.deepEqual(await res.json(), { statusCode: 400, code: 'BAD_REQUEST', error: 'Bad Request', message: 'body/k must be >= 1' })

    const metrics = await (await fetch(`${url}/metrics`)).text()
    assert.match(metrics, /align_stage_seconds_count\{stage="search"\} [1-9]/)

    assert.equal(await server.stop(), 0, server.logs())
    server = undefined
  })

  it('finds the index again after a restart', async () => {
    server = await startServer(env, { timeoutMs: TIMEOUT.model })
    const info = await (await fetch(`${server.url}/v1/info`)).json() as any
    assert.equal(info.counts.images, 3)
    const res = await fetch(`${server.url}/v1/search?q=pizza&k=1`)
    assert.equal((await res.json() as any).results[0].id, 'twemoji-pizza')
    assert.equal(await server.stop(), 0, server.logs())
    server = undefined
  })
})
