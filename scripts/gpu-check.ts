/**
 * The GPU check of the full-size folder through the project's encoder (tools/device-check-align.sh runs it):
 *   ORT_NODE_PREFIX=.cache/ort-cuda node --import tsx scripts/gpu-check.ts [MODEL_DIR] [PROVIDER]
 * PROVIDER defaults to cuda. Prints one JSON line: parity of the provider's raw embeddings with the CPU's
 * (largest |Δ| per component against 1e-3, and the lowest cosine), vision images/s at batch 8 and 32,
 * and the ingest rate (decode + encode, embedForIngest as an index worker runs it) on generated photos.
 */
import sharp from 'sharp'
import { loadEncoder, loadReference, cosine } from '../src/ml/index.js'
import type { ExecutionProviderSetting } from '../src/ml/index.js'

const dir = process.argv[2] ?? 'models/align-base-shape'
const provider = (process.argv[3] ?? 'cuda') as ExecutionProviderSetting
const TOLERANCE = 1e-3

async function photo (i: number): Promise<Buffer> {
  // a 1600×1200 JPEG with structure (gradients plus noise), different per i so nothing is deduplicated
  const w = 1600
  const h = 1200
  const px = Buffer.alloc(w * h * 3)
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3
      px[o] = (x + i * 37) & 255
      px[o + 1] = (y * 2 + i * 11) & 255
      px[o + 2] = ((x ^ y) + i) & 255
    }
  }
  return await sharp(px, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 85 }).toBuffer()
}

async function rate (fn: () => Promise<unknown>, items: number, minMs = 3000): Promise<number> {
  await fn()
  let n = 0
  const t0 = performance.now()
  while (performance.now() - t0 < minMs || n < 2) { await fn(); n++ }
  return (n * items) / ((performance.now() - t0) / 1000)
}

const ref = await loadReference(dir)
const cpu = await loadEncoder({ modelDir: dir, executionProvider: 'cpu' })
const cpuTexts = await cpu.encodeTextsRaw(ref.texts.map((t) => t.text))
const cpuImages = await cpu.runVisionRaw(ref.images.map((im) => im.pixelValues!))
await cpu.close()

const t0 = performance.now()
const enc = await loadEncoder({ modelDir: dir, executionProvider: provider, maxBatch: 32 })
const loadMs = performance.now() - t0
try {
  const gpuTexts = await enc.encodeTextsRaw(ref.texts.map((t) => t.text))
  const gpuImages = await enc.runVisionRaw(ref.images.map((im) => im.pixelValues!))
  let maxAbs = 0
  let minCos = 1
  for (const [a, b] of [...gpuTexts.map((v, i) => [v, cpuTexts[i]!]), ...gpuImages.map((v, i) => [v, cpuImages[i]!])] as Array<[Float32Array, Float32Array]>) {
    for (let k = 0; k < a.length; k++) maxAbs = Math.max(maxAbs, Math.abs(a[k]! - b[k]!))
    minCos = Math.min(minCos, cosine(a, b))
  }
  const side = enc.folder.preprocessor.inputHeight
  const one = ref.images[0]!.pixelValues!
  const batchRate: Record<string, number> = {}
  for (const b of [8, 32]) batchRate[`images/s at batch ${b}`] = await rate(async () => await enc.runVisionRaw(Array.from({ length: b }, () => one)), b)
  const photos = await Promise.all(Array.from({ length: 32 }, async (_, i) => await photo(i)))
  const ingest = await rate(async () => await enc.embedForIngest(photos), photos.length, 5000)
  const ingestBackground = await rate(async () => await enc.embedForIngest(photos, { background: true }), photos.length, 5000)
  console.log(JSON.stringify({
    dir,
    requested: provider,
    provider: enc.provider,
    loadMs: Math.round(loadMs),
    input: `${side}×${side}`,
    parity: { maxAbsDiff: maxAbs, tolerance: TOLERANCE, ok: maxAbs <= TOLERANCE, minCosine: minCos },
    ...Object.fromEntries(Object.entries(batchRate).map(([k, v]) => [k, Number(v.toFixed(1))])),
    'ingest images/s (1600×1200 JPEG, in-process)': Number(ingest.toFixed(1)),
    'ingest images/s (background process, as an index job)': Number(ingestBackground.toFixed(1))
  }))
} finally {
  await enc.close()
}
