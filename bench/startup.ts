/**
 * Cold start to /ready and RSS of the server: the built entry (`node dist/main/server.js`, what
 * `npm start` runs) against the TypeScript sources through tsx (what `npm start` ran before the
 * build), on the same empty DATA_DIR setup, rounds alternating so both see the same machine load.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { machineInfo } from './lib/machine.js'
import { startServer, waitFor } from './lib/server-process.js'
import type { BenchOptions, SectionResult } from './lib/types.js'

const ROUNDS = 5

/** resident set size of a process, bytes (Linux) */
function rssOf (pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? NaN : Number(m[1]) * 1024
}
const WAYS = {
  dist: { entry: 'dist/main/server.js', nodeArgs: [] as string[] },
  tsx: { entry: 'src/main/server.ts', nodeArgs: ['--import', 'tsx'] }
} as const
type Way = keyof typeof WAYS

async function coldStart (way: Way, logDir: string, round: number): Promise<{ readyMs: number, rssMb: number }> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'align-bench-startup-'))
  try {
    const t0 = performance.now()
    const srv = await startServer({ DATA_DIR: dataDir, DEMO_POOL: '', LOG_LEVEL: 'warn' }, path.join(logDir, `startup-${way}-${round}.log`), [...WAYS[way].nodeArgs], { entry: WAYS[way].entry })
    try {
      await waitFor('/ready', async () => ((await fetch(`${srv.url}/ready`)).ok ? true : undefined), 120_000, 20)
      const readyMs = performance.now() - t0
      const rssMb = rssOf(srv.proc.pid!) / 2 ** 20
      return { readyMs, rssMb }
    } finally {
      await srv.stop()
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

export async function startupSection (opts: BenchOptions, log: (m: string) => void): Promise<SectionResult> {
  const started = performance.now()
  const runs: Record<Way, Array<{ readyMs: number, rssMb: number }>> = { dist: [], tsx: [] }
  mkdirSync(opts.workDir, { recursive: true })
  for (let r = 0; r < ROUNDS; r++) {
    for (const way of (r % 2 === 0 ? ['dist', 'tsx'] : ['tsx', 'dist']) as Way[]) {
      const m = await coldStart(way, opts.workDir, r)
      runs[way].push(m)
      log(`startup ${way} round ${r + 1}: ready in ${m.readyMs.toFixed(0)} ms, RSS ${m.rssMb.toFixed(0)} MB`)
    }
  }
  const ready = { dist: median(runs.dist.map((m) => m.readyMs)), tsx: median(runs.tsx.map((m) => m.readyMs)) }
  const rss = { dist: median(runs.dist.map((m) => m.rssMb)), tsx: median(runs.tsx.map((m) => m.rssMb)) }
  return {
    id: 'startup',
    title: 'Cold start: the built dist/ against tsx',
    machine: machineInfo(),
    dataset: 'an empty DATA_DIR (DEMO_POOL off), the default model',
    params: { rounds: ROUNDS, order: 'alternating', readiness: 'GET /ready polled every 20 ms' },
    tables: [{
      title: 'Process start to /ready 200, and the RSS then (medians)',
      columns: ['entry', 'ready, ms', 'RSS, MB', 'ready vs tsx', 'RSS vs tsx'],
      rows: (['dist', 'tsx'] as Way[]).map((w) => [`${w}: node ${[...WAYS[w].nodeArgs, WAYS[w].entry].join(' ')}`, Math.round(ready[w]), Math.round(rss[w]), +(ready[w] / ready.tsx).toFixed(2), +(rss[w] / rss.tsx).toFixed(2)])
    }],
    targets: [],
    notes: ['Both load the same model and open the same empty SQLite backend; the difference is the TypeScript transform at load time (tsx compiles every module, the worker threads\' and the background process\'s included) and the esbuild service that tsx keeps in memory.'],
    wallMs: performance.now() - started,
    raw: { runs }
  }
}
