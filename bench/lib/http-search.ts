/**
 * Text search through the real server's HTTP API over a store a bench section already filled: the
 * server encodes each query with the model, then asks its backend. Throughput is autocannon's
 * average req/s over one window of POST /v1/search with rotating texts.
 */
import autocannon from 'autocannon'
import { FatalError, startServer, waitFor } from './server-process.js'

export interface HttpSearchResult { rps: number, p50: number, p99: number, errors: number }

/**
 * Starts `src/server.ts` with `env` (which names the store: DATA_DIR or DATABASE_URL, and MODEL_DIR,
 * whose model must be the one the store was filled for), then loads it for `durationS` seconds.
 */
export async function httpTextSearch (env: Record<string, string>, texts: string[], opts: { durationS: number, connections: number, logFile: string }): Promise<HttpSearchResult> {
  const runs = await httpSearchRuns(env, texts, [{ name: 'plain' }], opts)
  return runs.get('plain')!
}

/** One load window: `filter(i)` is the i-th request's metadata filter (none: unfiltered). */
export interface HttpRun { name: string, filter?: (i: number) => Record<string, unknown> }

/**
 * Like httpTextSearch, with several windows on one server start, one per run, in order; `probe`
 * runs first against the server's URL (e.g. a recall check through the API).
 */
export async function httpSearchRuns (env: Record<string, string>, texts: string[], runs: HttpRun[],
  opts: { durationS: number, connections: number, logFile: string, probe?: (url: string) => Promise<void> }): Promise<Map<string, HttpSearchResult>> {
  const server = await startServer({ DEMO_POOL: '', LOG_LEVEL: 'warn', RATE_LIMIT_MAX: '0', ...env }, opts.logFile)
  try {
    await waitFor('the server to be ready', async () => {
      if (server.proc.exitCode !== null) throw new FatalError(`the server exited (${server.proc.exitCode}); see ${opts.logFile}`)
      return (await fetch(`${server.url}/ready`)).ok ? true : undefined
    }, 300_000)
    if (opts.probe !== undefined) await opts.probe(server.url)
    const out = new Map<string, HttpSearchResult>()
    for (const run of runs) {
      let i = 0
      const r = await autocannon({
        url: server.url,
        connections: opts.connections,
        duration: opts.durationS,
        requests: [{
          method: 'POST',
          path: '/v1/search',
          headers: { 'content-type': 'application/json' },
          setupRequest: (req) => {
            const n = i++
            return { ...req, body: JSON.stringify({ query: [{ text: texts[n % texts.length]! }], k: 10, ...(run.filter === undefined ? {} : { filter: run.filter(n) }) }) }
          }
        }]
      })
      out.set(run.name, { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts + r.non2xx })
    }
    return out
  } finally {
    await server.stop()
  }
}
