/**
 * `npm start` as a person or a process manager runs it: signals sent to npm's pid (or, for
 * Ctrl-C, to the terminal's whole process group) stop the server cleanly and leave nothing behind.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, it, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { freePort } from '../helpers/spawn-server.js'
import { TIMEOUT } from '../helpers/timeouts.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

interface NpmStart { npm: ChildProcess, url: string, output: () => string, exited: Promise<number | null> }

/**
 * `npm start` in its own process group (as a terminal would run it), resolved once /ready answers.
 * Whatever is left of the group is killed when the test ends.
 */
async function npmStart (t: TestContext, dir: string): Promise<NpmStart> {
  const port = await freePort()
  const npm = spawn('npm', ['start'], {
    cwd: ROOT,
    detached: true, // its own process group, so the group can be signalled like a terminal's
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      DATA_DIR: path.join(dir, 'data'),
      IMPORT_DIR: path.join(dir, 'import'),
      MODEL_DIR: path.join(ROOT, 'models/align-mini'),
      DEMO_POOL: '',
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      PORT: String(port),
      UV_THREADPOOL_SIZE: ''
    }
  })
  let out = ''
  npm.stdout?.on('data', (c: Buffer) => { out += c.toString('utf8') })
  npm.stderr?.on('data', (c: Buffer) => { out += c.toString('utf8') })
  const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => { resolve(code) }))
  let done = false
  void exited.then(() => { done = true })
  // never leave a server behind if this test fails
  t.after(() => { try { process.kill(-npm.pid!, 'SIGKILL') } catch {} })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + TIMEOUT.model
  for (;;) {
    if (done) throw new Error(`npm start exited before the server was ready:\n${out}`)
    if (await answers(url)) return { npm, url, output: () => out, exited }
    if (Date.now() > deadline) throw new Error(`not ready in time:\n${out}`)
    await sleep(250)
  }
}

async function answers (url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/ready`, { signal: AbortSignal.timeout(2000) })).ok
  } catch {
    return false
  }
}

/** whether any process of the group is still alive */
function groupAlive (pgid: number): boolean {
  try {
    process.kill(-pgid, 0)
    return true
  } catch {
    return false
  }
}

/** the pid the server logged (pino writes it on every line) */
function serverPid (output: string): number {
  const line = output.split('\n').find((l) => l.includes('align-search is up'))
  assert.ok(line !== undefined, output)
  return (JSON.parse(line) as { pid: number }).pid
}

async function waitGone (pgid: number): Promise<void> {
  const until = Date.now() + 30_000
  while (groupAlive(pgid) && Date.now() < until) await sleep(100)
}

describe('npm start', { timeout: TIMEOUT.server }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'align-npm-start-'))
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  it('stops the server cleanly on SIGTERM to npm\'s pid, leaving no process', async (t) => {
    const { npm, url, output, exited } = await npmStart(t, dir)
    const pid = serverPid(output())
    if (existsSync(`/proc/${pid}/stat`)) {
      // node is npm's own child (no sh or tsx in between to swallow the signal) and got the pool size
      const ppid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1])
      assert.equal(ppid, npm.pid, 'the server is not npm\'s direct child')
      assert.ok(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes('UV_THREADPOOL_SIZE=6'))
    }
    process.kill(npm.pid!, 'SIGTERM')
    await exited
    await waitGone(npm.pid!)
    assert.equal(groupAlive(npm.pid!), false, `processes left after SIGTERM:\n${output()}`)
    assert.equal(await answers(url), false, 'the port still answers')
    assert.match(output(), /"msg":"services closed"/, 'the services were not closed (index not checkpointed)')
  })

  it('stops cleanly on Ctrl-C (SIGINT to the process group), not as a second, impatient signal', async (t) => {
    const { npm, url, output, exited } = await npmStart(t, dir)
    process.kill(-npm.pid!, 'SIGINT')
    await exited
    await waitGone(npm.pid!)
    assert.equal(groupAlive(npm.pid!), false, `processes left after SIGINT:\n${output()}`)
    assert.equal(await answers(url), false, 'the port still answers')
    assert.doesNotMatch(output(), /second signal/, 'npm\'s copy of Ctrl-C was taken for a second Ctrl-C')
    assert.match(output(), /"msg":"services closed"/)
  })
})
