/**
 * `npm run bench`: runs the chosen sections in order and writes bench/report.md and bench/report.json.
 * See lib/args.ts for the options (`npm run bench -- --help`).
 */
import { annSection } from './ann.js'
import { backendsSection } from './backends.js'
import { clusterSection } from './cluster.js'
import { scalingSection } from './scaling.js'
import { alignBaseSection } from './align-base.js'
import { encodersSection } from './encoders.js'
import { ingestSection } from './ingest.js'
import { parseBenchArgs } from './lib/args.js'
import { machineInfo } from './lib/machine.js'
import { embedPool, type PoolEmbeddings } from './lib/pool.js'
import type { BenchOptions, SectionResult } from './lib/types.js'
import { memorySection } from './memory.js'
import { photosSection } from './photos.js'
import { writeReport } from './report.js'
import { serviceSection } from './service.js'
import { startupSection } from './startup.js'

const log = (m: string): void => { console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}`) }

async function main (): Promise<void> {
  const opts = parseBenchArgs(process.argv.slice(2))
  const started = performance.now()
  log(`${opts.commandLine}`)
  let pool: PoolEmbeddings | undefined
  const getPool = async (): Promise<PoolEmbeddings> => {
    pool ??= await embedPool(opts.modelDir, opts.poolDir, `${opts.workDir}/cache`)
    return pool
  }
  const sections: Record<string, (o: BenchOptions) => Promise<SectionResult>> = {
    ann: async (o) => await annSection(o, await getPool(), log),
    encoders: async (o) => await encodersSection(o, log),
    ingest: async (o) => await ingestSection(o, log),
    cluster: async (o) => await clusterSection(o, log),
    scaling: async (o) => await scalingSection(o, log),
    service: async (o) => await serviceSection(o, log),
    memory: async (o) => await memorySection(o, await getPool(), log),
    'align-base': async (o) => await alignBaseSection(o, log),
    photos: async (o) => await photosSection(o, log),
    backends: async (o) => await backendsSection(o, await getPool(), log),
    startup: async (o) => await startupSection(o, log)
  }
  const results: SectionResult[] = []
  for (const id of opts.sections) {
    log(`section ${id}`)
    const t0 = performance.now()
    try {
      results.push(await sections[id]!(opts))
    } catch (err) {
      // one broken section must not lose the others' results
      log(`section ${id} failed: ${(err as Error).stack ?? String(err)}`)
      results.push({ id, title: id, machine: machineInfo(), skipped: `failed: ${(err as Error).message}`, dataset: '', params: {}, tables: [], targets: [], notes: [], wallMs: performance.now() - t0 })
    }
    log(`section ${id} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  }
  const wallMs = performance.now() - started
  const files = await writeReport(opts, results, wallMs)
  log(`wrote ${files.md} and ${files.json} (${(wallMs / 1000).toFixed(1)} s)`)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
