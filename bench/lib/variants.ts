/**
 * Image files for indexing jobs, each with different bytes (the service skips content it has seen).
 * The first BASE are made with sharp from pool PNGs: a brightness/hue shift, an optional mirror and
 * a marker pixel; even ones are 128 px PNG, odd ones 256 px JPEG (upscaled), to mix decoders. The
 * rest are byte copies of those with a unique comment (a PNG tEXt chunk, a JPEG COM segment): the
 * same pixels and decode cost, a different SHA-256, and no sharp time spent making them.
 */
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { crc32 } from 'node:zlib'
import sharp from 'sharp'
import { readPool } from './pool.js'
import { rng } from './vectors.js'

const BASE = 1000
/** bump when the way files are made changes, so cached sets are remade */
const FORMAT = 2

async function mapLimit (n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: limit }, async () => { while (next < n) await fn(next++) }))
}

/** `bytes` with a comment that makes them unique; the image itself is unchanged */
export function withComment (bytes: Buffer, text: string): Buffer {
  const body = Buffer.from(text, 'latin1')
  if (bytes[0] === 0xff && bytes[1] === 0xd8) { // JPEG: a COM segment right after SOI
    const seg = Buffer.alloc(4)
    seg.writeUInt16BE(0xfffe, 0)
    seg.writeUInt16BE(body.length + 2, 2)
    return Buffer.concat([bytes.subarray(0, 2), seg, body, bytes.subarray(2)])
  }
  // PNG: a tEXt chunk before IEND (the last 12 bytes)
  const typeAndData = Buffer.concat([Buffer.from('tEXt', 'latin1'), Buffer.from('Comment\0', 'latin1'), body])
  const chunk = Buffer.alloc(8 + typeAndData.length)
  chunk.writeUInt32BE(typeAndData.length - 4, 0)
  typeAndData.copy(chunk, 4)
  chunk.writeUInt32BE(crc32(typeAndData) >>> 0, 4 + typeAndData.length)
  const iend = bytes.length - 12
  return Buffer.concat([bytes.subarray(0, iend), chunk, bytes.subarray(iend)])
}

/**
 * Writes `count` files into `dir` (emptied first), named v<salt>-<i>.png|jpg, and returns the wall time.
 * `salt` makes two sets differ. A finished set is reused (the `.complete` marker).
 */
export async function makeVariants (poolDir: string, dir: string, count: number, salt: number): Promise<{ ms: number, files: number, cached: boolean }> {
  const t0 = performance.now()
  const marker = path.join(dir, '.complete')
  const stamp = `${FORMAT}/${count}/${salt}`
  if (existsSync(marker) && (await readFile(marker, 'utf8')) === stamp) return { ms: 0, files: count, cached: true }
  if (existsSync(dir)) await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  const pool = await readPool(poolDir)
  const rand = rng(salt * 7919 + 1)
  const base = Math.min(count, BASE)
  const made: Buffer[] = []
  await mapLimit(base, 4, async (i) => {
    const src = pool[i % pool.length]!
    const id = i + salt * 1_000_003
    const pixel = await sharp({ create: { width: 1, height: 1, channels: 3, background: { r: id & 255, g: (id >> 8) & 255, b: (id >> 16) & 255 } } }).png().toBuffer()
    let img = sharp(path.join(poolDir, src.file)).flatten({ background: '#ffffff' }).modulate({ brightness: 0.85 + 0.3 * rand(), hue: Math.floor(rand() * 40) - 20 })
    if (rand() < 0.5) img = img.flop()
    const marked = await sharp(await img.png().toBuffer()).composite([{ input: pixel, left: (i * 13) % 128, top: ((i * 7) >> 4) % 128 }]).png().toBuffer()
    made[i] = i % 2 === 0 ? marked : await sharp(marked).resize(256, 256).jpeg({ quality: 85 }).toBuffer()
  })
  for (let i = 0; i < count; i++) {
    const b = made[i % base]!
    const bytes = i < base ? b : withComment(b, `align-search bench copy ${salt}/${i}`)
    await writeFile(path.join(dir, `v${salt}-${i}.${b[0] === 0xff ? 'jpg' : 'png'}`), bytes)
  }
  await writeFile(marker, stamp)
  return { ms: performance.now() - t0, files: (await readdir(dir)).length - 1, cached: false }
}

/** every .png / .jpg under `dir`, recursively, sorted */
export async function listImages (dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort().map((f) => path.join(dir, f))
}
