import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, test } from 'node:test'
import { loadEncoder, loadReference } from '../../src/ml/index.js'
import type { AlignEncoder, OnnxRunEvent, PreparedImage, ReferenceData } from '../../src/ml/index.js'
import { TIMEOUT } from '../helpers/timeouts.js'

const MODEL_DIR = 'models/align-mini'

function maxAbsDiff (a: Float32Array, b: Float32Array): number {
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!))
  return m
}

describe('worker pool', { timeout: TIMEOUT.model }, () => {
  let enc: AlignEncoder
  let ref: ReferenceData
  let prepared: PreparedImage[]
  const batches: OnnxRunEvent[] = []
  before(async () => {
    ref = await loadReference(MODEL_DIR)
    enc = await loadEncoder({ modelDir: MODEL_DIR, executionProvider: 'cpu', maxBatch: 4, onBatch: (e) => batches.push(e) })
    prepared = (await enc.prepareImages(ref.images.map((im) => im.png))) as PreparedImage[]
    // distinct inputs: the reference images plus pixel-flipped copies
    prepared = prepared.concat(prepared.map((p) => ({ ...p, pixels: p.pixels.map((v) => -v) })))
  })
  after(async () => { await enc?.close() })

  test('concurrent image calls are coalesced into runs of at most maxBatch, and match unbatched results within 1e-5', async () => {
    const single: Float32Array[] = []
    for (const p of prepared) single.push((await enc.encodePrepared([p]))[0]!)
    batches.length = 0
    const concurrent = await Promise.all(prepared.map(async (p) => (await enc.encodePrepared([p]))[0]!))
    const runs = batches.filter((b) => b.tower === 'vision')
    assert.equal(runs.reduce((s, b) => s + b.size, 0), prepared.length)
    assert.ok(runs.length < prepared.length, `${prepared.length} calls took ${runs.length} runs: nothing was batched`)
    assert.ok(runs.every((b) => b.size <= 4), 'a run exceeded maxBatch')
    concurrent.forEach((v, i) => assert.ok(maxAbsDiff(v, single[i]!) <= 1e-5, `image ${i} differs by ${maxAbsDiff(v, single[i]!)}`))
  })

  test('concurrent text calls are coalesced (padded together) and match unbatched results within 1e-5', async () => {
    const texts = ref.texts.map((t) => t.text).concat(['a', 'a much longer text about a cat sitting on a red chair'])
    const single: Float32Array[] = []
    for (const t of texts) single.push((await enc.encodeTexts([t]))[0]!)
    batches.length = 0
    const concurrent = await Promise.all(texts.map(async (t) => (await enc.encodeTexts([t]))[0]!))
    const runs = batches.filter((b) => b.tower === 'text')
    assert.ok(runs.length < texts.length, `${texts.length} calls took ${runs.length} runs: nothing was batched`)
    concurrent.forEach((v, i) => assert.ok(maxAbsDiff(v, single[i]!) <= 1e-5, `${JSON.stringify(texts[i])} differs by ${maxAbsDiff(v, single[i]!)}`))
  })

  test('a text query queued behind a large image batch runs before it, not after', async () => {
    batches.length = 0
    const images = enc.encodePrepared(Array.from({ length: 200 }, (_, i) => prepared[i % prepared.length]!))
    const text = enc.encodeTexts(['cat face'])
    await Promise.all([images, text])
    const order = batches.map((b) => b.tower)
    const visionRuns = order.filter((t) => t === 'vision').length
    assert.equal(visionRuns, 50)
    // first-come-first-served would put it last, after all 50 image runs
    assert.ok(order.indexOf('text') < visionRuns / 2, `run order: ${order.join(' ')}`)
  })

  test('one call larger than maxBatch is split across runs, results in order', async () => {
    batches.length = 0
    const many = Array.from({ length: 10 }, (_, i) => prepared[i % prepared.length]!)
    const out = await enc.encodePrepared(many)
    assert.equal(out.length, 10)
    assert.ok(batches.every((b) => b.size <= 4))
    out.forEach((v, i) => assert.ok(maxAbsDiff(v, out[i % prepared.length]!) <= 1e-5))
  })

  test('stats count runs, items and run time per tower', () => {
    const s = enc.stats()
    assert.ok(s.vision.batches > 0 && s.vision.items >= s.vision.batches && s.vision.runMs > 0)
    assert.ok(s.text.largestBatch > 1)
  })

  test('results are independent arrays (not views into one batch buffer)', async () => {
    const out = await enc.encodePrepared(prepared.slice(0, 3))
    assert.ok(out.every((v) => v.byteOffset === 0 && v.buffer.byteLength === v.byteLength))
  })

  test('a wrongly sized pixel tensor is refused before it reaches a batch', async () => {
    await assert.rejects(enc.runVisionRaw([new Float32Array(10)]), /pixel tensor has 10 values/)
  })

  test('several workers share the load; close() terminates them and later calls reject', async () => {
    const pool = await loadEncoder({ modelDir: MODEL_DIR, executionProvider: 'cpu', workers: 2, maxBatch: 2 })
    assert.equal(pool.workers, 2)
    const out = await Promise.all(prepared.map(async (p) => (await pool.encodePrepared([p]))[0]!))
    const base = await enc.encodePrepared(prepared)
    out.forEach((v, i) => assert.ok(maxAbsDiff(v, base[i]!) <= 1e-5))
    const pending = assert.rejects(pool.encodePrepared(prepared), /closed/) // in flight or queued when closing
    await pool.close()
    assert.equal(pool.workers, 0)
    await pending
    await assert.rejects(pool.encodeTexts(['cat']), /closed/)
    await pool.close() // idempotent
  })

  test('"cuda,cpu" falls back to CPU with a warning when CUDA is unavailable (plain "cuda" fails instead: execution-provider.test.ts)', async (t) => {
    const warnings: Array<{ o: object, m?: string }> = []
    const infos: Array<{ o: object, m?: string }> = []
    const logger = { info: (o: object, m?: string) => infos.push({ o, m }), warn: (o: object, m?: string) => warnings.push({ o, m }) }
    const gpu = await loadEncoder({ modelDir: MODEL_DIR, executionProvider: 'cuda,cpu', logger })
    try {
      if (gpu.provider === 'cuda') {
        t.diagnostic('CUDA is available here: fallback not exercised')
        assert.equal(warnings.length, 0)
      } else {
        assert.equal(gpu.provider, 'cpu')
        assert.ok(warnings.some((w) => /EXECUTION_PROVIDER=cuda,cpu: running on cpu/.test(w.m ?? '')), 'no fallback warning logged')
      }
      assert.ok(infos.some((i) => (i.o as { provider?: string }).provider === gpu.provider), 'active provider not logged')
      assert.equal((await gpu.encodeTexts(['cat']))[0]!.length, gpu.config.embeddingDim)
    } finally {
      await gpu.close()
    }
  })
})

describe('worker start-up under plain node', { timeout: TIMEOUT.model }, () => {
  let dir: string
  before(async () => { dir = await mkdtemp(path.join('test', 'ml', '.tmp-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  test('the .ts worker loads when the process was started with `node --import tsx`', async () => {
    const script = path.join(dir, 'encode-one.ts')
    await writeFile(script, [
      "import { loadEncoder } from '../../../src/ml/index.js'",
      "const enc = await loadEncoder({ modelDir: 'models/align-mini', executionProvider: 'cpu' })",
      "const [v] = await enc.encodeTexts(['cat'])",
      'console.log(JSON.stringify({ dim: v!.length, provider: enc.provider }))',
      'await enc.close()'
    ].join('\n'))
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script], { timeout: TIMEOUT.model / 2 })
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as { dim: number, provider: string }
    assert.equal(out.provider, 'cpu')
    assert.ok(out.dim > 0)
  })
})
