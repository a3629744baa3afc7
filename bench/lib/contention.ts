/**
 * Why text search slows down while images are being indexed in the same process: the tokenizer's
 * async encode (HF tokenizers, napi AsyncTask) runs on the libuv thread pool, which sharp's decodes
 * also use. Measures tokenization latency alone and while `lanes` prepareImage loops run, 4 (the
 * old decode concurrency) and 2 (the default now, src/ml/decode-limit.ts decodeConcurrency).
 */
import { readFile } from 'node:fs/promises'
import { loadModelFolder, prepareImage, TextTokenizer } from '../../src/ml/index.js'
import { percentile } from './stats.js'

export interface ContentionRow { lanes: number, p50: number, p99: number, decodesPerS: number }

async function tokenizeLatency (tok: TextTokenizer, ms: number): Promise<{ p50: number, p99: number }> {
  const lat: number[] = []
  const end = performance.now() + ms
  while (performance.now() < end) {
    const t = performance.now()
    await tok.encode([`an icon of a cat ${lat.length}`])
    lat.push(performance.now() - t)
    await new Promise((resolve) => setTimeout(resolve, 2)) // ~one query every 2 ms
  }
  lat.sort((a, b) => a - b)
  return { p50: percentile(lat, 50), p99: percentile(lat, 99) }
}

export async function tokenizerContention (modelDir: string, files: string[], laneCounts = [0, 4, 2], ms = 3000): Promise<ContentionRow[]> {
  const folder = await loadModelFolder(modelDir)
  const tok = TextTokenizer.fromFile(folder.tokenizerPath, folder.config.maxTextLength, folder.config.usesTokenTypeIds)
  const bytes = await Promise.all(files.slice(0, 1000).map(async (f) => await readFile(f)))
  const rows: ContentionRow[] = []
  for (const lanes of laneCounts) {
    // an object: the loops read `stop` after each await, when the measuring code has set it
    const run = { stop: false }
    let done = 0
    const loops = Array.from({ length: lanes }, async () => {
      while (!run.stop) await prepareImage(bytes[done++ % bytes.length]!, folder.preprocessor)
    })
    const t0 = performance.now()
    const lat = await tokenizeLatency(tok, ms)
    const rate = done / ((performance.now() - t0) / 1000)
    run.stop = true
    await Promise.all(loops)
    rows.push({ lanes, ...lat, decodesPerS: rate })
  }
  return rows
}
