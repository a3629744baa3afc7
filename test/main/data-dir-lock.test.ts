/**
 * One process per DATA_DIR: the lock is refused while its holder lives, names the holder, and is
 * free again the moment the holder releases it or dies, even by SIGKILL.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { DataDirBusyError, lockDataDir } from '../../src/main/data-dir-lock.js'
import { TIMEOUT } from '../helpers/timeouts.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const base = mkdtempSync(path.join(tmpdir(), 'align-lock-'))
after(() => { rmSync(base, { recursive: true, force: true }) })
let n = 0
const freshDir = (): string => mkdtempSync(path.join(base, `d${++n}-`))

test('a held DATA_DIR is refused, naming its holder, until the holder releases it', { timeout: TIMEOUT.unit }, () => {
  const dir = freshDir()
  const first = lockDataDir(dir, 'the first')
  assert.throws(() => lockDataDir(dir, 'the second'), (err: unknown) => {
    assert.ok(err instanceof DataDirBusyError)
    assert.equal(err.holder?.role, 'the first')
    assert.equal(err.holder?.pid, process.pid)
    assert.match(err.message, new RegExp(`DATA_DIR ${dir} is in use by the first \\(pid ${process.pid}, since `))
    return true
  })
  first.release()
  const second = lockDataDir(dir, 'the second')
  second.release()
  // another DATA_DIR is another lock
  const a = lockDataDir(dir, 'a')
  const b = lockDataDir(freshDir(), 'b')
  a.release()
  b.release()
})

test('the lock of a killed process is taken over at once', { timeout: TIMEOUT.unit }, async () => {
  const dir = freshDir()
  const holder = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e',
    `import { lockDataDir } from './src/main/data-dir-lock.ts'
     lockDataDir(${JSON.stringify(dir)}, 'a child')
     console.log('locked')
     setInterval(() => {}, 60_000)`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise((resolve) => holder.once('exit', resolve))
  try {
    await new Promise<void>((resolve, reject) => {
      holder.stdout.on('data', (c: Buffer) => { if (c.toString().includes('locked')) resolve() })
      holder.once('exit', () => { reject(new Error('the child exited before it took the lock')) })
    })
    assert.throws(() => lockDataDir(dir, 'the parent'), (err: unknown) => err instanceof DataDirBusyError && err.holder?.pid === holder.pid && err.holder?.role === 'a child')
  } finally {
    holder.kill('SIGKILL')
    await exited
  }
  lockDataDir(dir, 'the parent').release()
})
