/**
 * Images for the reliability tests, generated with sharp at test time (no fixture files):
 * distinct small images, the awkward-but-valid formats the service must accept, and the
 * hostile inputs it must refuse.
 */
import { deflateSync } from 'node:zlib'
import sharp, { type Sharp } from 'sharp'

export type Rgb = [number, number, number]

function hsl (h: number, s: number, l: number): Rgb {
  const a = s * Math.min(l, 1 - l)
  const f = (n: number): number => {
    const k = (n + h / 30) % 12
    return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))))
  }
  return [f(0), f(8), f(4)]
}

/**
 * The `i`-th of an endless family of distinct images: a pattern (stripes, checks, rings,
 * diagonals) in two colours at a frequency, all chosen from `i`, plus `i` written in binary
 * into the top row so two indices never give the same bytes. PNG, `size`×`size` pixels.
 */
export async function distinctImage (i: number, size = 40): Promise<Buffer> {
  const fg = hsl((i * 47) % 360, 0.9, 0.35 + ((i >> 3) % 3) * 0.15)
  const bg = hsl((i * 47 + 180 + (i % 7) * 20) % 360, 0.6, 0.85 - ((i >> 5) % 2) * 0.6)
  const pattern = i % 5
  const freq = 2 + ((i >> 2) % 6)
  const px = Buffer.alloc(size * size * 3)
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const u = (x * freq) / size
      const v = (y * freq) / size
      let on: boolean
      switch (pattern) {
        case 0: on = Math.floor(u) % 2 === 0; break
        case 1: on = Math.floor(v) % 2 === 0; break
        case 2: on = (Math.floor(u) + Math.floor(v)) % 2 === 0; break
        case 3: on = Math.floor(Math.hypot(x - size / 2, y - size / 2) * freq / size * 2) % 2 === 0; break
        default: on = Math.floor(u + v) % 2 === 0
      }
      const c = on ? fg : bg
      px.set(c, (y * size + x) * 3)
    }
  }
  for (let b = 0; b < Math.min(size, 24); b++) {
    const bit = (i >> b) & 1
    px.set(bit === 1 ? [0, 0, 0] : [255, 255, 255], b * 3)
  }
  return await sharp(px, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer()
}

/** A solid-colour raw RGB buffer. */
function solid (width: number, height: number, c: Rgb): Buffer {
  const px = Buffer.alloc(width * height * 3)
  for (let p = 0; p < width * height; p++) px.set(c, p * 3)
  return px
}

/** Left half red, right half blue: an image whose orientation can be read back from its pixels. */
async function redLeftBlueRight (width = 64, height = 32): Promise<Sharp> {
  const px = Buffer.alloc(width * height * 3)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) px.set(x < width / 2 ? [230, 20, 20] : [20, 20, 230], (y * width + x) * 3)
  }
  return sharp(px, { raw: { width, height, channels: 3 } })
}

/**
 * The same picture three ways, all JPEG: `upright` (red left, blue right, no EXIF),
 * `rotated` (pixels stored turned 90° counter-clockwise, with EXIF Orientation 6 saying
 * "turn 90° clockwise to display", so a viewer shows it upright) and `sideways`
 * (the stored pixels of `rotated`, without the EXIF tag).
 */
export async function orientationSet (): Promise<{ upright: Buffer, rotated: Buffer, sideways: Buffer }> {
  const upright = await (await redLeftBlueRight()).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer()
  const storedRaw = await (await redLeftBlueRight()).rotate(270).raw().toBuffer({ resolveWithObject: true })
  const stored = (): Sharp => sharp(storedRaw.data, { raw: { width: storedRaw.info.width, height: storedRaw.info.height, channels: 3 } })
  const rotated = await stored().jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).withMetadata({ orientation: 6 }).toBuffer()
  const sideways = await stored().jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer()
  return { upright, rotated, sideways }
}

/** A 16-bit-per-channel RGB PNG. */
export async function png16 (): Promise<Buffer> {
  return await sharp(await distinctImage(90001, 32)).toColourspace('rgb16').png().toBuffer()
}

/** A CMYK JPEG. */
export async function cmykJpeg (): Promise<Buffer> {
  return await sharp(await distinctImage(90002, 32)).toColourspace('cmyk').jpeg({ quality: 90 }).toBuffer()
}

async function frames (n: number, size: number, seed: number): Promise<Buffer[]> {
  return await Promise.all(Array.from({ length: n }, async (_, f) => await distinctImage(seed + f, size)))
}

/** An animated GIF of 3 frames. */
export async function animatedGif (): Promise<Buffer> {
  return await sharp(await frames(3, 32, 90010), { join: { animated: true } }).gif({ loop: 0, delay: [100, 100, 100] }).toBuffer()
}

/** An animated WebP of 3 frames. */
export async function animatedWebp (): Promise<Buffer> {
  return await sharp(await frames(3, 32, 90020), { join: { animated: true } }).webp({ loop: 0, delay: [100, 100, 100] }).toBuffer()
}

/** A baseline JPEG cut at `fraction` of its length (the end-of-image marker and most scans missing). */
export async function truncatedJpeg (fraction = 0.5): Promise<Buffer> {
  const full = await sharp(await distinctImage(90030, 96)).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer()
  return full.subarray(0, Math.floor(full.length * fraction))
}

let crcTable: Uint32Array | undefined
function crc32 (buf: Buffer): number {
  if (crcTable === undefined) {
    crcTable = new Uint32Array(256)
    for (let n = 0; n < 256; n++) {
      let c = n
      for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
      crcTable[n] = c >>> 0
    }
  }
  let c = 0xffffffff
  for (const b of buf) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

/**
 * A small, real PNG whose IHDR is patched (CRC recomputed, so it is a well-formed header)
 * to declare `width`×`height` pixels: a decompression bomb as far as any header check sees.
 */
export async function pngDeclaring (width: number, height: number): Promise<Buffer> {
  const png = Buffer.from(await sharp(solid(16, 16, [200, 200, 200]), { raw: { width: 16, height: 16, channels: 3 } }).png().toBuffer())
  // signature (8) | length (4) | "IHDR" (4) | width (4) | height (4) | ... | CRC over type+data
  if (png.toString('ascii', 12, 16) !== 'IHDR') throw new Error('unexpected PNG layout')
  png.writeUInt32BE(width, 16)
  png.writeUInt32BE(height, 20)
  const len = png.readUInt32BE(8)
  png.writeUInt32BE(crc32(png.subarray(12, 16 + len)), 16 + len)
  return png
}

/**
 * A genuinely decodable, highly compressible grayscale PNG of `side`×`side` pixels
 * (a few KB on the wire, `side`² pixels once decoded), written by hand so building it is cheap.
 */
export function compressiblePng (side: number): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length)
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data])
    const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td))
    return Buffer.concat([len, td, crc])
  }
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(side, 0); ihdr.writeUInt32BE(side, 4)
  ihdr[8] = 8; ihdr[9] = 0; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0 // 8-bit grayscale
  const raw = Buffer.alloc((side + 1) * side, 0) // filter byte 0 + black row, every row
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0))
  ])
}

/** An SVG that pulls an image from `url` (http:// or file://) and includes a file through an XML entity. */
export function hostileSvg (url: string, filePath = '/etc/passwd'): Buffer {
  return Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE svg [ <!ENTITY leak SYSTEM "file://${filePath}"> ]>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="64">
  <image href="${url}" xlink:href="${url}" x="0" y="0" width="64" height="64"/>
  <image href="file://${filePath}" width="8" height="8"/>
  <text x="4" y="40">&leak;</text>
</svg>
`)
}

/** Random bytes of noise, as a (large, incompressible) PNG of `side`×`side` pixels. */
export async function noisePng (side: number): Promise<Buffer> {
  return await sharp({ create: { width: side, height: side, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 60 } } }).png({ compressionLevel: 0 }).toBuffer()
}

/** Reads the colour at (x, y) of any image sharp decodes, after applying EXIF orientation. */
export async function pixelAt (bytes: Buffer, x: number, y: number): Promise<{ rgb: Rgb, width: number, height: number }> {
  const { data, info } = await sharp(bytes).autoOrient().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true })
  const o = (y * info.width + x) * info.channels
  return { rgb: [data[o]!, data[o + 1]!, data[o + 2]!], width: info.width, height: info.height }
}

/** true when `c` is clearly red / blue. */
export const isRed = (c: Rgb): boolean => c[0] > 150 && c[2] < 100
export const isBlue = (c: Rgb): boolean => c[2] > 150 && c[0] < 100
