/**
 * Image variants of the demo pool for indexing jobs: each is a pool PNG with a brightness/hue shift,
 * an optional mirror and one marker pixel whose colour and place come from its index, so every file
 * has different bytes and a different SHA-256 (the service skips content it has seen).
 * Even indexes are written as 128 px PNG, odd ones as 256 px JPEG (upscaled), to mix decoders.
 */
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import sharp from 'sharp'
import { readPool } from './pool.js'
import { rng } from './vectors.js'

async function mapLimit<T> (n: number, limit: number, fn: (i: number) => Promise<T>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: limit }, async () => { while (next < n) await fn(next++) }))
}

/**
 * Writes `count` variants into `dir` (emptied first), named v<salt>-<i>.png|jpg, and returns the wall time.
 * `salt` makes two sets with the same count differ. A finished set is reused (the `.complete` marker).
 */
export async function makeVariants (poolDir: string, dir: string, count: number, salt: number): Promise<{ ms: number, files: number, cached: boolean }> {
  const t0 = performance.now()
  const marker = path.join(dir, '.complete')
  if (existsSync(marker) && (await readFile(marker, 'utf8')) === `${count}/${salt}`) return { ms: 0, files: count, cached: true }
  if (existsSync(dir)) await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  const pool = await readPool(poolDir)
  const rand = rng(salt * 7919 + 1)
  const params = Array.from({ length: count }, () => ({ b: 0.85 + 0.3 * rand(), hue: Math.floor(rand() * 40) - 20, flop: rand() < 0.5 }))
  await mapLimit(count, 4, async (i) => {
    const src = pool[i % pool.length]!
    const p = params[i]!
    const id = i + salt * 1_000_003
    const pixel = await sharp({ create: { width: 1, height: 1, channels: 3, background: { r: id & 255, g: (id >> 8) & 255, b: (id >> 16) & 255 } } }).png().toBuffer()
    let img = sharp(path.join(poolDir, src.file)).flatten({ background: '#ffffff' }).modulate({ brightness: p.b, hue: p.hue })
    if (p.flop) img = img.flop()
    const base = await img.png().toBuffer()
    const marked = sharp(base).composite([{ input: pixel, left: (i * 13) % 128, top: ((i * 7) >> 4) % 128 }])
    if (i % 2 === 0) await marked.png().toFile(path.join(dir, `v${salt}-${i}.png`))
    else await sharp(await marked.png().toBuffer()).resize(256, 256).jpeg({ quality: 85 }).toFile(path.join(dir, `v${salt}-${i}.jpg`))
  })
  await writeFile(marker, `${count}/${salt}`)
  return { ms: performance.now() - t0, files: (await readdir(dir)).length - 1, cached: false }
}
