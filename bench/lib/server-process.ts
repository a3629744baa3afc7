/** Starts the built server (`node dist/main/server.js`; `npm run bench` builds it first) on 127.0.0.1 with a fresh DATA_DIR, and stops it. */
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { createServer } from 'node:net'
import { withMallocTuning } from '../../src/ml/malloc-env.js'

export interface ServerHandle {
  url: string
  proc: ChildProcess
  stop: () => Promise<number | null>
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      s.close(() => { resolve(port) })
    })
  })
}

/** An error `waitFor` passes on at once instead of polling again (e.g. the server exited). */
export class FatalError extends Error {}

/**
 * @param nodeArgs extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir=bench/out/prof']
 * @param opts.entry the script (default dist/main/server.js; dist/main/worker.js for an index worker, with portVar WORKER_PORT)
 */
export async function startServer (env: Record<string, string>, logFile: string, nodeArgs: string[] = [], opts: { entry?: string, portVar?: string } = {}): Promise<ServerHandle> {
  const port = await freePort()
  const proc = spawn(process.execPath, ['--enable-source-maps', ...nodeArgs, opts.entry ?? 'dist/main/server.js'], {
    env: { ...withMallocTuning(process.env), ...env, [opts.portVar ?? 'PORT']: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const log = createWriteStream(logFile)
  proc.stdout?.pipe(log)
  proc.stderr?.pipe(log)
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => { resolve(code) }))
  return {
    url: `http://127.0.0.1:${port}`,
    proc,
    async stop () {
      if (proc.exitCode === null) proc.kill('SIGTERM')
      const timer = setTimeout(() => { if (proc.exitCode === null) proc.kill('SIGKILL') }, 15_000)
      const code = await exited
      clearTimeout(timer)
      return code
    }
  }
}

/** Polls `check` every `everyMs` until it returns a value, or throws after `timeoutMs` (or at once on a FatalError). */
export async function waitFor<T> (what: string, check: () => Promise<T | undefined>, timeoutMs: number, everyMs = 250): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await check().catch((err: unknown) => { if (err instanceof FatalError) throw err; return undefined })
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}
