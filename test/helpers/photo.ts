/** Camera-sized test JPEGs, made on the spot so the tests need no image files. */
import { existsSync } from 'node:fs'
import sharp from 'sharp'

/** A Debian wallpaper that is a photograph (plasma-workspace-wallpapers, GPL-2+), when installed. */
export const WALLPAPER_PHOTO = '/usr/share/wallpapers/EveningGlow/contents/images/2560x1600.jpg'
export const wallpaperInstalled = (): boolean => existsSync(WALLPAPER_PHOTO)

/** xorshift32, so every run draws the same picture */
function rng (seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 2 ** 32 }
}

/**
 * A photo-like JPEG of `width` × `height` (quality 90, 4:2:0): a smooth random colour field
 * (sky, walls), hard-edged shapes (objects), a band of fine stripes near the decode's Nyquist
 * limit (fabric, foliage; where a reduced decode would alias first) and grain (sensor noise).
 */
export async function syntheticPhoto (width = 6000, height = 4000, seed = 7): Promise<Buffer> {
  const rand = rng(seed)
  const cols = 24
  const rows = 16
  const field = Buffer.alloc(cols * rows * 3)
  for (let i = 0; i < field.length; i++) field[i] = Math.floor(rand() * 256)
  const base = await sharp(field, { raw: { width: cols, height: rows, channels: 3 } }).resize(width, height, { fit: 'fill', kernel: 'cubic' }).raw().toBuffer()
  const px = (x: number, y: number, rgb: number[]): void => { base.set(rgb, (y * width + x) * 3) }
  for (let k = 0; k < 12; k++) {
    const [cx, cy, r] = [rand() * width, rand() * height, (0.03 + rand() * 0.1) * height]
    const rgb = [rand() * 256, rand() * 256, rand() * 256].map(Math.floor)
    const round = rand() < 0.5
    for (let y = Math.max(0, Math.floor(cy - r)); y < Math.min(height, cy + r); y++) {
      for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(width, cx + r); x++) {
        if (!round || (x - cx) ** 2 + (y - cy) ** 2 <= r * r) px(x, y, rgb)
      }
    }
  }
  // diagonal stripes with a 6 px period: at a 1/8 decode they fall below one pixel
  for (let y = Math.floor(height * 0.7); y < height; y++) {
    for (let x = 0; x < width * 0.4; x++) if ((x + y) % 6 < 3) px(x, y, [34, 34, 34])
  }
  // luma grain, uniform ±10 (Uint8Array clamps the writes)
  const clamped = new Uint8ClampedArray(base.buffer, base.byteOffset, base.length)
  for (let i = 0; i < clamped.length; i += 3) {
    const g = (rand() - 0.5) * 20
    clamped[i] = clamped[i]! + g; clamped[i + 1] = clamped[i + 1]! + g; clamped[i + 2] = clamped[i + 2]! + g
  }
  return await sharp(base, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90, chromaSubsampling: '4:2:0' }).toBuffer()
}

/** The wallpaper photograph enlarged to a 6000 × 4000 JPEG, as a 24 MP camera would store it. */
export async function wallpaperPhoto24mp (): Promise<Buffer> {
  return await sharp(WALLPAPER_PHOTO).resize(6000, 4000, { fit: 'cover' }).jpeg({ quality: 90, chromaSubsampling: '4:2:0' }).toBuffer()
}
