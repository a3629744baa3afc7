/**
 * Start the real server, as built (`node dist/main/server.js`, see ENTRIES), as a child process, for tests
 * that need a real socket, a browser or a separate process. Generic: pass any env.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const LOG_LIMIT = 256 * 1024

export interface RunningServer {
  /** base URL without a trailing slash, e.g. http://127.0.0.1:41234 */
  url: string
  port: number
  child: ChildProcess
  /** the last 256 KiB of the server's stdout and stderr */
  logs: () => string
  /** SIGTERM, then SIGKILL after `graceMs` (default 10 s); resolves with the exit code */
  stop: (graceMs?: number) => Promise<number | null>
  /** SIGKILL now (a crash, as far as the server can tell) */
  kill: () => Promise<number | null>
}

/**
 * The built process entries: what `npm start`, `npm run worker` and `npm run index` run. The test
 * runner builds dist/ first, so the process tests exercise the compiled .js, worker threads included.
 */
export const ENTRIES = {
  server: 'dist/main/server.js',
  worker: 'dist/main/worker.js',
  index: 'dist/main/cli/index-dir.js'
} as const

export interface StartOptions {
  /** path polled until it answers 2xx (default /ready) */
  readyPath?: string
  /** how long to wait for readiness, ms (default 120 s) */
  timeoutMs?: number
  /** working directory (default the repository root) */
  cwd?: string
  /** echo the server's output to this process's stderr */
  verbose?: boolean
  /** extra node flags */
  nodeArgs?: string[]
  /** the script to run (default ENTRIES.server; ENTRIES.worker for an index worker) */
  entry?: string
  /** the variable that carries the port (default PORT; WORKER_PORT for an index worker) */
  portVar?: string
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port')))
    })
  })
}

/**
 * Spawn the server with `env` layered over this process's environment. PORT defaults to a
 * free port and HOST to 127.0.0.1. Resolves once `readyPath` answers 2xx; rejects with the
 * server's output if it exits or is not ready in time.
 */
export async function startServer (env: Record<string, string | undefined> = {}, opts: StartOptions = {}): Promise<RunningServer> {
  const portVar = opts.portVar ?? 'PORT'
  const given = env[portVar]
  const port = given !== undefined && given !== '0' ? Number(given) : await freePort()
  const host = env.HOST ?? '127.0.0.1'
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`
  const child = spawn(process.execPath, ['--enable-source-maps', ...(opts.nodeArgs ?? []), opts.entry ?? ENTRIES.server], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { ...process.env, ...env, [portVar]: String(port), HOST: host },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-LOG_LIMIT)
    if (opts.verbose === true) process.stderr.write(chunk)
  }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal === null ? null : 128))))
  let hasExited = false
  void exited.then(() => { hasExited = true })
  // never leave a server behind if the test process dies first
  const reap = (): void => { if (!hasExited) child.kill('SIGKILL') }
  process.once('exit', reap)

  const stop = async (graceMs = 10_000): Promise<number | null> => {
    if (!hasExited) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => { if (!hasExited) child.kill('SIGKILL') }, graceMs)
      const code = await exited
      clearTimeout(timer)
      process.off('exit', reap)
      return code
    }
    process.off('exit', reap)
    return await exited
  }
  const kill = async (): Promise<number | null> => {
    if (!hasExited) child.kill('SIGKILL')
    process.off('exit', reap)
    return await exited
  }
  const server: RunningServer = { url, port, child, logs: () => output, stop, kill }

  const readyUrl = url + (opts.readyPath ?? '/ready')
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000)
  while (true) {
    if (hasExited) throw new Error(`the server exited before it was ready (code ${String(await exited)}):\n${output}`)
    try {
      const res = await fetch(readyUrl, { signal: AbortSignal.timeout(2000) })
      if (res.ok) return server
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      await kill()
      throw new Error(`the server was not ready at ${readyUrl} within ${opts.timeoutMs ?? 120_000} ms:\n${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}
