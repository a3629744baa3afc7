// ONNX Runtime's CUDA provider through the project's own session code (dist/ml), on a model folder:
//   npm run build && ORT_NODE_PREFIX=.cache/ort-cuda node tools/cuda-ort-check.mjs [MODEL_DIR] [PROVIDER]
// PROVIDER is an EXECUTION_PROVIDER setting (default cuda). Prints one JSON line: the provider each tower
// got, parity with the CPU on reference.json's inputs (largest |Δ| per component against 1e-3, lowest
// cosine), vision images/s at batch 8 and 32, and texts/s at batch 32. It needs Node, dist/ml and the
// ORT_NODE_PREFIX install only, no node_modules, so it travels to a GPU host in a few files
// (tools/device-check-align.sh's Node section needs the whole project; scripts/gpu-check.ts adds the ingest rate).
import os from 'node:os'
import path from 'node:path'

const { ort } = await import('../dist/ml/ort.js')
const { openWithProviders, sessionOptionsFor, runVisionSession } = await import('../dist/ml/ort-session.js')
const { loadReference } = await import('../dist/ml/reference.js')

const dir = process.argv[2] ?? 'models/align-base-shape'
const setting = process.argv[3] ?? 'cuda'
const TOLERANCE = 1e-3
const threads = Math.max(1, Math.min(8, os.availableParallelism()))

async function open (file, providers) {
  let session
  const { provider, fallbackReason } = await openWithProviders(providers, async (p) => {
    session = await ort.InferenceSession.create(file, sessionOptionsFor(file, p, threads))
    return session
  }, async () => { await session?.release(); session = undefined })
  return { session, provider, fallbackReason }
}

function textFeed (s, rows) {
  const len = Math.max(...rows.map((r) => r.length))
  const ids = new BigInt64Array(rows.length * len)
  const mask = new BigInt64Array(rows.length * len)
  rows.forEach((r, i) => r.forEach((id, j) => { ids[i * len + j] = BigInt(id); mask[i * len + j] = 1n }))
  const feed = {}
  for (const name of s.inputNames) {
    const data = name === 'input_ids' ? ids : name === 'attention_mask' ? mask : new BigInt64Array(ids.length)
    feed[name] = new ort.Tensor('int64', data, [rows.length, len])
  }
  return feed
}

async function outputs (towers, ref, size) {
  const out = []
  for (const t of ref.texts) {
    const r = await towers.text.session.run(textFeed(towers.text.session, [t.inputIds]))
    out.push(r[towers.text.session.outputNames[0]].data)
  }
  for (const img of ref.images) out.push((await runVisionSession(towers.vision.session, img.pixelValues, 1, size, size)).data)
  return out
}

async function rate (fn, items, minMs = 3000) {
  for (let i = 0; i < 3; i++) await fn()
  let n = 0
  const t0 = performance.now()
  while (performance.now() - t0 < minMs || n < 3) { await fn(); n++ }
  return Math.round(10 * n * items / ((performance.now() - t0) / 1000)) / 10
}

const ref = await loadReference(dir)
const size = Math.round(Math.sqrt(ref.images[0].pixelValues.length / 3))
const result = { onnxruntime: ort.env.versions?.common ?? '?', setting, threads, size }
const towers = {}
for (const name of ['cpu', setting]) {
  const t0 = performance.now()
  towers[name] = { vision: await open(path.join(dir, 'vision.onnx'), name), text: await open(path.join(dir, 'text.onnx'), name) }
  result[`${name} providers`] = `${towers[name].vision.provider}/${towers[name].text.provider}`
  result[`${name} load s`] = Math.round((performance.now() - t0) / 100) / 10
  const why = towers[name].vision.fallbackReason ?? towers[name].text.fallbackReason
  if (why !== undefined) result[`${name} fallback`] = why
}
const a = await outputs(towers.cpu, ref, size)
const b = await outputs(towers[setting], ref, size)
let maxDiff = 0
let minCos = 1
a.forEach((x, i) => {
  const y = b[i]
  let dot = 0; let nx = 0; let ny = 0
  for (let j = 0; j < x.length; j++) { maxDiff = Math.max(maxDiff, Math.abs(x[j] - y[j])); dot += x[j] * y[j]; nx += x[j] * x[j]; ny += y[j] * y[j] }
  minCos = Math.min(minCos, dot / Math.sqrt(nx * ny))
})
result['max |Δ| against cpu'] = maxDiff
result['min cosine'] = minCos
result[`parity ok (${TOLERANCE})`] = maxDiff <= TOLERANCE
const vision = towers[setting].vision.session
for (const batch of [8, 32]) {
  const pixels = new Float32Array(batch * 3 * size * size)
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.sin(i) // any finite input: the rate does not depend on it
  result[`vision images/s at batch ${batch}`] = await rate(async () => await runVisionSession(vision, pixels, batch, size, size), batch)
}
const text = towers[setting].text.session
const feed = textFeed(text, Array.from({ length: 32 }, () => [101, 142, 238, 210, 142, 244, 102]))
result['texts/s at batch 32 (7 tokens)'] = await rate(async () => await text.run(feed), 32, 2000)
console.log(JSON.stringify(result))
for (const t of Object.values(towers)) { await t.vision.session.release(); await t.text.session.release() }
