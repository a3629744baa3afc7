/**
 * `npm run index` and a running server never share a DATA_DIR: while the server holds it the CLI
 * refuses with a message saying what to do instead; once the server has stopped the CLI indexes,
 * and a server started meanwhile would be refused in turn.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { lockDataDir } from '../../../src/main/data-dir-lock.js'
import { startServer } from '../../helpers/spawn-server.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const IMAGES = ['twemoji-cat-face.png', 'twemoji-pizza.png']

/** `npm run index -- <folder>`; resolves with its exit code and stderr */
async function npmRunIndex (folder: string, env: Record<string, string>): Promise<{ code: number | null, stderr: string }> {
  const child = spawn('npm', ['run', '--silent', 'index', '--', folder], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString('utf8') })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  return { code, stderr }
}

describe('npm run index and the server', { timeout: TIMEOUT.server }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'align-cli-lock-'))
  after(() => { rmSync(dir, { recursive: true, force: true }) })
  const photos = path.join(dir, 'photos')
  mkdirSync(photos)
  for (const f of IMAGES) copyFileSync(path.join(ROOT, 'demo/pool', f), path.join(photos, f))
  const env = {
    DATA_DIR: path.join(dir, 'data'),
    IMPORT_DIR: path.join(dir, 'import'),
    MODEL_DIR: path.join(ROOT, 'models/align-mini'),
    DEMO_POOL: '',
    LOG_LEVEL: 'warn'
  }

  it('refuses while a server holds DATA_DIR, and indexes once it has stopped', async () => {
    const server = await startServer(env, { timeoutMs: TIMEOUT.model })
    try {
      const refused = await npmRunIndex(photos, env)
      assert.notEqual(refused.code, 0, refused.stderr)
      assert.match(refused.stderr, new RegExp(`DATA_DIR ${env.DATA_DIR} is in use by align-search server \\(pid ${server.child.pid}, since `))
      assert.match(refused.stderr, /POST .*\/v1\/index-jobs/)
      const info = await (await fetch(`${server.url}/v1/info`)).json() as { counts: { images: number } }
      assert.equal(info.counts.images, 0)
    } finally {
      assert.equal(await server.stop(), 0, server.logs())
    }

    const ran = await npmRunIndex(photos, env)
    assert.equal(ran.code, 0, ran.stderr)
    assert.match(ran.stderr, /done: 2 indexed/)

    const again = await startServer(env, { timeoutMs: TIMEOUT.model })
    try {
      const info = await (await fetch(`${again.url}/v1/info`)).json() as { counts: { images: number } }
      assert.equal(info.counts.images, 2)
    } finally {
      assert.equal(await again.stop(), 0, again.logs())
    }
  })

  it('indexes only the folder (never the demo pool), reports what it skipped, and exits 3 when a file failed', async () => {
    const mixed = path.join(dir, 'mixed')
    mkdirSync(mixed)
    copyFileSync(path.join(ROOT, 'demo/pool', IMAGES[0]!), path.join(mixed, 'good.png'))
    writeFileSync(path.join(mixed, 'broken.png'), readFileSync(path.join(ROOT, 'demo/pool', IMAGES[1]!)).subarray(0, 200))
    writeFileSync(path.join(mixed, 'notes.txt'), 'not an image')
    // DEMO_POOL left at its default (demo/pool exists): an empty DATA_DIR must still get the folder only
    const { DEMO_POOL: _unset, ...withDefaultDemo } = env
    const data = path.join(dir, 'data-mixed')
    const ran = await npmRunIndex(mixed, { ...withDefaultDemo, DATA_DIR: data })
    assert.equal(ran.code, 3, ran.stderr)
    assert.match(ran.stderr, /done: 1 indexed, 0 already present, 1 failed, of 2 files/)
    assert.match(ran.stderr, /broken\.png: the PNG file is corrupt or truncated: [^\n]+\n/)
    assert.match(ran.stderr, /skipped 1 not an image by extension, 0 unreadable, e\.g\. notes\.txt/)
    const server = await startServer({ ...env, DATA_DIR: data }, { timeoutMs: TIMEOUT.model })
    try {
      const info = await (await fetch(`${server.url}/v1/info`)).json() as { counts: { images: number, texts: number } }
      assert.deepEqual([info.counts.images, info.counts.texts], [1, 0])
    } finally {
      assert.equal(await server.stop(), 0, server.logs())
    }
  })

  it('a server does not start on a DATA_DIR that another process holds', async () => {
    const held = lockDataDir(env.DATA_DIR, 'npm run index')
    try {
      const started = await startServer(env, { timeoutMs: TIMEOUT.model }).then(async (server) => {
        await server.stop()
        return server.logs()
      }, (err: Error) => err)
      assert.ok(started instanceof Error, `the server started on a held DATA_DIR:\n${String(started)}`)
      assert.match(started.message, /exited before it was ready \(code 75\)[\s\S]*is in use by npm run index \(pid \d+/)
    } finally {
      held.release()
    }
  })
})
