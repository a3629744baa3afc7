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
import { startServer, type RunningServer } from '../helpers/spawn-server.js'
import { TIMEOUT } from '../helpers/timeouts.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const HAS_SERVICES = existsSync(path.join(ROOT, 'src/services/index.ts'))
const POOL = path.join(ROOT, 'demo/pool')
const IMAGES = ['twemoji-cat-face.png', 'twemoji-automobile.png', 'twemoji-pizza.png']
const MODEL_ID = (JSON.parse(readFileSync(path.join(ROOT, 'models/align-mini/config.json'), 'utf8')) as { model_id: string }).model_id

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
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  /** runs `fn` against a fresh server process, which is killed if `fn` does not stop it */
  async function withServer (fn: (server: RunningServer) => Promise<void>): Promise<void> {
    const server = await startServer(env, { timeoutMs: TIMEOUT.model })
    try {
      await fn(server)
    } catch (err) {
      await server.kill()
      if (err instanceof Error) err.message += `\n--- server output ---\n${server.logs().slice(-4000)}`
      throw err
    }
  }

  it('indexes and searches real images over HTTP, then shuts down gracefully', async () => withServer(async (server) => {
    const { url } = server

    let res = await fetch(`${url}/health`)
    assert.equal(res.status, 200)
    const info = await (await fetch(`${url}/v1/info`)).json() as any
    assert.equal(info.model.modelId, MODEL_ID)
    assert.equal(info.model.dim, 256)
    assert.deepEqual(info.counts, { images: 0, texts: 0, exact: true })

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

    res = await fetch(`${url}/v1/search?q=${encodeURIComponent('a cat')}&k=3`)
    assert.equal(res.status, 200)
    const search = await res.json() as any
    assert.equal(search.model, MODEL_ID)
    assert.deepEqual(search.results.map((r: any) => r.id).sort(), ['twemoji-automobile', 'twemoji-cat-face', 'twemoji-pizza'])
    for (const r of search.results) assert.ok(r.score >= -1.001 && r.score <= 1.001, `score ${String(r.score)}`)
    const cat = search.results.find((r: any) => r.id === 'twemoji-cat-face')
    assert.deepEqual(cat.metadata, { file: 'twemoji-cat-face.png' })

    res = await fetch(`${url}/v1/search`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: [{ imageId: 'twemoji-pizza' }, { text: 'a car', weight: -0.2 }], k: 2, explain: true })
    })
    assert.equal(res.status, 200)
    const mixed = await res.json() as any
    assert.equal(mixed.results.length, 2)
    assert.equal(mixed.results[0].terms.length, 2)

    res = await fetch(`${url}/v1/images/twemoji-cat-face/thumbnail`)
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-type'), 'image/webp')
    assert.equal(Buffer.from(await res.arrayBuffer()).subarray(8, 12).toString('latin1'), 'WEBP')

    res = await fetch(`${url}/v1/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":[{"text":"a"}],"k":0}' })
    assert.equal(res.status, 400)
    assert.deepEqual(await res.json(), { statusCode: 400, code: 'BAD_REQUEST', error: 'Bad Request', message: 'body/k must be >= 1' })

    // the page (or, before it is built, a 503 saying how to build it), under the CSP
    res = await fetch(`${url}/`)
    assert.ok(res.status === 200 || res.status === 503, `GET / answered ${res.status}`)
    assert.match(res.headers.get('content-security-policy') ?? '', /img-src 'self' data: blob:/)

    const metrics = await (await fetch(`${url}/metrics`)).text()
    assert.match(metrics, /align_stage_seconds_count\{stage="search"\} [1-9]/)

    assert.equal(await server.stop(), 0, server.logs())
  }))

  it('finds the index again after a restart', async () => withServer(async (server) => {
    const info = await (await fetch(`${server.url}/v1/info`)).json() as any
    assert.equal(info.counts.images, 3)
    const res = await fetch(`${server.url}/v1/images/twemoji-pizza`)
    assert.equal(res.status, 200)
    assert.deepEqual((await res.json() as any).metadata, { file: 'twemoji-pizza.png' })
    assert.equal(await server.stop(), 0, server.logs())
  }))

  it('ranks the matching image first (text → image, image → image)', async () => withServer(async (server) => {
    const hint = 'align-mini ranked the wrong image first: is models/align-mini a trained model? (see its metrics.json)'
    // not "a pizza": twemoji's pizza was a known miss of align-mini v2, which had not seen that style
    for (const [q, want] of [['a cat', 'twemoji-cat-face'], ['a car', 'twemoji-automobile']]) {
      const body = await (await fetch(`${server.url}/v1/search?q=${encodeURIComponent(q ?? '')}&k=3`)).json() as any
      assert.equal(body.results[0].id, want, `${hint}\n"${q}" → ${JSON.stringify(body.results)}`)
    }
    const res = await fetch(`${server.url}/v1/search`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: [{ image: readFileSync(path.join(POOL, 'twemoji-pizza.png')).toString('base64') }], k: 1 })
    })
    const body = await res.json() as any
    assert.equal(body.results[0].id, 'twemoji-pizza', hint)
    assert.ok(body.results[0].score > 0.99, `the same image scores ${String(body.results[0].score)}`)
    assert.equal(await server.stop(), 0, server.logs())
  }))
})
