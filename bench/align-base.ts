/**
 * Section 6, ALIGN-base on CPU (only when models/align-base exists): images/s and texts/s through
 * the project encoder, against this machine's float32 FLOP bound measured in the same run
 * (onnxruntime MatMul 512³ on all cores). FLOPs per item from ALIGN-NOTES: vision ≈ 8.4 GMAC
 * at 289², text ≈ 5.5 GMAC at 64 tokens (1 MAC = 2 FLOP).
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { loadEncoder, prepareImage, loadModelFolder } from '../src/ml/index.js'
import { cores } from './lib/args.js'
import { machineInfo } from './lib/machine.js'
import { matMulGflops } from './lib/onnx-raw.js'
import { readPool } from './lib/pool.js'
import { fmt, ratio, timeLoop } from './lib/stats.js'
import type { BenchOptions, SectionResult } from './lib/types.js'

const VISION_GFLOP = 2 * 8.4
const TEXT_GFLOP = 2 * 5.5
const BATCH = 8

export async function alignBaseSection (opts: BenchOptions, log: (m: string) => void): Promise<SectionResult> {
  const started = performance.now()
  const machine = machineInfo()
  const dir = path.resolve('models/align-base')
  const base = { id: 'align-base', title: 'ALIGN-base on CPU against the FLOP bound', machine, dataset: '', params: {}, tables: [], targets: [], notes: [] }
  if (!existsSync(path.join(dir, 'vision.onnx'))) {
    return { ...base, skipped: 'models/align-base is not present: it is not committed and has to be exported first (python3 tools/export_align.py --checkpoint kakaobrain/align-base --out models/align-base, see models/README.md), so there is no model to measure on this machine', wallMs: performance.now() - started }
  }
  const threads = cores()
  log(`align-base: MatMul GFLOP/s on ${threads} threads`)
  const gflops = await matMulGflops(threads)
  const folder = await loadModelFolder(dir)
  const items = (await readPool(opts.poolDir)).slice(0, BATCH)
  const bytes = await Promise.all(items.map(async (it) => await readFile(path.join(opts.poolDir, it.file))))
  const prepared = await Promise.all(bytes.map(async (b) => await prepareImage(b, folder.preprocessor)))
  const texts = items.map((it) => it.label)
  const enc = await loadEncoder({ modelDir: dir, executionProvider: 'cpu', workers: 1, threads, maxBatch: BATCH })
  try {
    const v = await timeLoop(async () => await enc.encodePrepared(prepared), { minMs: 10_000, minIters: 2 })
    const t = await timeLoop(async () => await enc.encodeTexts(texts), { minMs: 10_000, minIters: 2 })
    const ips = (v.iters * BATCH) / (v.ms / 1000)
    const tps = (t.iters * BATCH) / (t.ms / 1000)
    const boundI = gflops / VISION_GFLOP
    const boundT = gflops / TEXT_GFLOP
    return {
      ...base,
      dataset: `${folder.config.modelId}, ${folder.preprocessor.inputWidth}×${folder.preprocessor.inputHeight} input, pool images and labels`,
      params: { batch: BATCH, 'intra-op threads': threads, 'MatMul GFLOP/s': Number(gflops.toPrecision(3)) },
      tables: [{
        title: 'Throughput against the FLOP bound',
        columns: ['tower', 'GFLOP/item (notes)', 'items/s', 'bound items/s', '÷ bound'],
        rows: [['vision', VISION_GFLOP, fmt(ips), fmt(boundI), fmt(ratio(ips, boundI))], ['text (≤ 64 tokens)', TEXT_GFLOP, fmt(tps), fmt(boundT), fmt(ratio(tps, boundT))]]
      }],
      notes: ['Texts are short labels, padded to the longest in the batch, so text items cost less than the 64-token figure: the text ratio overstates efficiency.', 'Images are pre-decoded (encodePrepared), so decode time is excluded.'],
      wallMs: performance.now() - started
    }
  } finally {
    await enc.close()
  }
}
