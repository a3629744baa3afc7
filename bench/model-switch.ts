/**
 * Model switch on the demo pool (standalone: `npx tsx bench/model-switch.ts [--pool demo/pool] [--postgres]`):
 * indexes the pool with models/align-mini, then switches to test/fixtures/align-tiny while a loop
 * searches without pause. `--postgres`: on PostgreSQL + pgvector (DATABASE_URL, else a throwaway
 * cluster from the installed binaries) instead of the embedded backend. Prints the switch time, the searches answered during it (and any errors),
 * their latency against the same loop before the switch (a ratio, same run), and the per-image
 * cost of the stored preview next to the thumbnail's.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import Database from 'better-sqlite3'
import pino from 'pino'
import { loadConfig } from '../src/main/config/config.js'
import { openServices } from '../src/main/wiring/open-services.js'
import { toServicesConfig } from '../src/main/wiring/services-config.js'
import type { Services } from '../src/services/types.js'
import { startTestPostgres, type TestPostgres } from '../scripts/lib/postgres-server.js'

const args = process.argv.slice(2)
const pool = path.resolve(args.includes('--pool') ? args[args.indexOf('--pool') + 1]! : 'demo/pool')
const onPostgres = args.includes('--postgres')
const WORDS = ['cat', 'car', 'pizza', 'tree', 'arrow', 'house', 'music', 'star']

function pct (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? Number.NaN
}

async function searchLoop (s: Services, stop: () => boolean): Promise<{ ms: number[], errors: number }> {
  const ms: number[] = []
  let errors = 0
  for (let i = 0; !stop(); i++) {
    const t0 = performance.now()
    try {
      await s.search({ query: [{ text: WORDS[i % WORDS.length]! }], target: 'images', k: 10 })
      ms.push(performance.now() - t0)
    } catch { errors++ }
  }
  return { ms, errors }
}

const dir = mkdtempSync(path.join(tmpdir(), 'align-bench-switch-'))
let pg: TestPostgres | undefined
try {
  if (onPostgres) {
    const started = await startTestPostgres({ engine: 'server' })
    if (!('url' in started)) throw new Error(`--postgres: ${started.skip}`)
    pg = started
  }
  mkdirSync(path.join(dir, 'import'))
  const config = loadConfig({ DATA_DIR: path.join(dir, 'data'), IMPORT_DIR: path.join(dir, 'import'), DEMO_POOL: pool, MODELS_DIR: process.cwd(), MODEL_DIR: 'models/align-mini', ...(pg === undefined ? {} : { DATABASE_URL: pg.url }) })
  const s = await openServices(toServicesConfig(config), pino({ level: 'silent' }))
  const t0 = performance.now()
  // cluster jobs (PostgreSQL) are followed by their status
  for (;;) {
    const jobs = await s.listJobs({ limit: 5 })
    if (jobs.length > 0 && jobs.every((j) => j.status === 'done' || j.status === 'failed') && (await s.stats()).texts > 0) break
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  const stats = await s.stats()
  console.log(`indexed ${stats.images} images, ${stats.texts} texts with align-mini in ${((performance.now() - t0) / 1000).toFixed(1)} s`)

  const idleEnd = performance.now() + 5000
  const idle = await searchLoop(s, () => performance.now() > idleEnd)
  let switching = true
  const during = searchLoop(s, () => !switching)
  const t1 = performance.now()
  await s.models!.start('test/fixtures/align-tiny')
  await s.models!.idle()
  const switchMs = performance.now() - t1
  switching = false
  const d = await during
  const status = await s.models!.status()
  console.log(`switch to ${status.active.modelId}: ${(switchMs / 1000).toFixed(1)} s; searches answered during it: ${d.ms.length}, errors: ${d.errors}`)
  console.log(`search p50 ${pct(d.ms, 0.5).toFixed(1)} ms, p99 ${pct(d.ms, 0.99).toFixed(1)} ms during the switch vs p50 ${pct(idle.ms, 0.5).toFixed(1)} ms, p99 ${pct(idle.ms, 0.99).toFixed(1)} ms idle (${idle.ms.length} searches): ratio p50 ${(pct(d.ms, 0.5) / pct(idle.ms, 0.5)).toFixed(2)}, p99 ${(pct(d.ms, 0.99) / pct(idle.ms, 0.99)).toFixed(2)}`)
  const t2 = performance.now()
  await s.models!.swap()
  console.log(`swap back: ${(performance.now() - t2).toFixed(1)} ms`)
  await s.close()
  let row: { preview: number, thumb: number, emb: number }
  if (pg !== undefined) {
    const { default: Pg } = await import('pg')
    const db = new Pg.Client({ connectionString: pg.url })
    await db.connect()
    row = (await db.query<typeof row>('SELECT AVG(octet_length(preview))::float8 AS preview, AVG(octet_length(thumbnail))::float8 AS thumb, AVG(pg_column_size(embedding))::float8 AS emb FROM images')).rows[0]!
    await db.end()
  } else {
    const db = new Database(path.join(dir, 'data', 'align-search.db'), { readonly: true })
    row = db.prepare('SELECT AVG(LENGTH(preview)) AS preview, AVG(LENGTH(thumbnail)) AS thumb, AVG(LENGTH(embedding)) AS emb FROM images').get() as typeof row
    db.close()
  }
  console.log(`per image: preview ${(row.preview / 1024).toFixed(1)} KiB (PREVIEW_SIZE ${config.preview.size}, ${config.preview.format}), thumbnail ${(row.thumb / 1024).toFixed(1)} KiB, embedding ${row.emb} B`)
} finally {
  await pg?.stop()
  rmSync(dir, { recursive: true, force: true })
}
