/**
 * The demo pool (demo/pool/*.png, styles the shipped model was trained on) as benchmark data: its files, labels,
 * and its embeddings under the project encoder, cached in bench/out/cache by model and pool.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { formatPrompt, loadEncoder } from '../../src/ml/index.js'

export interface PoolItem { file: string, label: string, set: string }

export interface PoolEmbeddings {
  dim: number
  modelId: string
  /** [p × dim] image embeddings, L2-normalized, in `items` order */
  images: Float32Array
  /** [p × dim] embeddings of "<prompt template>(label)", L2-normalized */
  texts: Float32Array
  items: PoolItem[]
  /** encoding wall time (0 when read from the cache) */
  ms: number
  cached: boolean
}

/** The pool's files with their labels (manifest.jsonl when present, else the file name). */
export async function readPool (poolDir: string): Promise<PoolItem[]> {
  const manifest = path.join(poolDir, 'manifest.jsonl')
  if (existsSync(manifest)) {
    const lines = (await readFile(manifest, 'utf8')).split('\n').filter((l) => l.trim() !== '')
    return lines.map((l) => JSON.parse(l) as PoolItem).filter((it) => existsSync(path.join(poolDir, it.file)))
  }
  const files = (await readdir(poolDir)).filter((f) => /\.(png|jpe?g|webp)$/i.test(f)).sort()
  return files.map((file) => ({ file, label: file.replace(/\.[^.]+$/, '').replace(/[-_]+/g, ' '), set: '' }))
}

async function cacheKey (modelDir: string, poolDir: string, items: PoolItem[]): Promise<string> {
  const h = createHash('sha256')
  for (const f of ['vision.onnx', 'text.onnx', 'config.json', 'preprocessor_config.json']) {
    const st = await stat(path.join(modelDir, f))
    h.update(`${f}:${st.size}:${st.mtimeMs}\n`)
  }
  h.update(path.resolve(poolDir))
  for (const it of items) h.update(`${it.file}\t${it.label}\n`)
  return h.digest('hex').slice(0, 16)
}

function flatten (vs: Float32Array[], dim: number): Float32Array {
  const out = new Float32Array(vs.length * dim)
  vs.forEach((v, i) => out.set(v, i * dim))
  return out
}

/** Encodes every pool image and label with the project encoder (2 intra-op threads), or reads the cache. */
export async function embedPool (modelDir: string, poolDir: string, cacheDir: string): Promise<PoolEmbeddings> {
  const items = await readPool(poolDir)
  const key = await cacheKey(modelDir, poolDir, items)
  const file = path.join(cacheDir, `pool-${key}.json`)
  if (existsSync(file)) {
    const c = JSON.parse(await readFile(file, 'utf8')) as { dim: number, modelId: string, images: string, texts: string }
    const dec = (b64: string): Float32Array => { const b = Buffer.from(b64, 'base64'); return new Float32Array(b.buffer, b.byteOffset, b.length / 4).slice() }
    return { dim: c.dim, modelId: c.modelId, images: dec(c.images), texts: dec(c.texts), items, ms: 0, cached: true }
  }
  const t0 = performance.now()
  const enc = await loadEncoder({ modelDir, executionProvider: 'cpu', workers: 1, threads: 2, maxBatch: 64 })
  try {
    const dim = enc.config.embeddingDim
    const images: Float32Array[] = []
    const texts: Float32Array[] = []
    for (let i = 0; i < items.length; i += 64) {
      const chunk = items.slice(i, i + 64)
      const bytes = await Promise.all(chunk.map(async (it) => await readFile(path.join(poolDir, it.file))))
      images.push(...await enc.encodeImages(bytes))
      texts.push(...await enc.encodeTexts(chunk.map((it) => formatPrompt(enc.config, it.label))))
    }
    const out: PoolEmbeddings = { dim, modelId: enc.config.modelId, images: flatten(images, dim), texts: flatten(texts, dim), items, ms: performance.now() - t0, cached: false }
    await mkdir(cacheDir, { recursive: true })
    const b64 = (a: Float32Array): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64')
    await writeFile(file, JSON.stringify({ dim, modelId: out.modelId, images: b64(out.images), texts: b64(out.texts) }))
    return out
  } finally {
    await enc.close()
  }
}
