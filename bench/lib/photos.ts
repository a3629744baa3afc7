/**
 * Camera-sized JPEGs made from the photographs Debian ships in plasma-workspace-wallpapers
 * (GPL-2+, see /usr/share/doc/plasma-workspace-wallpapers/copyright). The package's other
 * wallpapers are renderings; only these are photographs. Each source is cropped to 3:2, resized
 * to the asked megapixels and given a light Gaussian grain: upscaled 4 MP sources are smoother
 * than a camera's output, and the grain brings the entropy, and so the decode cost, closer to it.
 */
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import sharp from 'sharp'

export const WALLPAPERS = '/usr/share/wallpapers'
/** the wallpapers that are photographs (the rest of the package is illustrations) */
export const PHOTO_WALLPAPERS = ['BytheWater', 'ColdRipple', 'ColorfulCups', 'DarkestHour', 'EveningGlow', 'FallenLeaf', 'Grey', 'Kite', 'OneStandsOut', 'Path', 'summer_1am']
/** bump when the way photos are made changes, so cached sets are remade */
const FORMAT = 3
/**
 * How each source becomes several photos with different bytes and embeddings: as is, mirrored,
 * upside down, and both. Four per source (44 per size) keep a job's fixed start cost from hiding
 * its steady rate. The upright ones go in sub-folder a, the others in b: a job over one half and
 * one over the whole size measure that fixed cost and the steady rate apart.
 */
export const VARIANTS = [
  { suffix: '', flop: false, flip: false, half: 'a' },
  { suffix: '-m', flop: true, flip: false, half: 'a' },
  { suffix: '-u', flop: false, flip: true, half: 'b' },
  { suffix: '-mu', flop: true, flip: true, half: 'b' }
] as const
export type Variant = typeof VARIANTS[number]

/** The largest JPEG of each photographic wallpaper that is installed, as paths; [] without the package. */
export async function wallpaperPhotos (root = WALLPAPERS): Promise<string[]> {
  const out: string[] = []
  for (const name of PHOTO_WALLPAPERS) {
    const dir = path.join(root, name, 'contents', 'images')
    if (!existsSync(dir)) continue
    const jpgs = (await readdir(dir)).filter((f) => /^\d+x\d+\.jpe?g$/i.test(f))
    const area = (f: string): number => f.split(/[x.]/).slice(0, 2).map(Number).reduce((a, b) => a * b, 1)
    const best = jpgs.sort((a, b) => area(b) - area(a))[0]
    if (best !== undefined) out.push(path.join(dir, best))
  }
  return out
}

/** width × height at 3:2 with about `mp` megapixels (24 → 6000 × 4000) */
export function photoSize (mp: number): { width: number, height: number } {
  const height = Math.round(Math.sqrt(mp * 1e6 / 1.5))
  return { width: Math.round(height * 1.5), height }
}

/** One camera-like JPEG (quality 90, 4:2:0) of `mp` megapixels from `source`, as `variant` turns it. */
export async function cameraJpeg (source: string | Buffer, mp: number, variant: Variant = VARIANTS[0]): Promise<Buffer> {
  const { width, height } = photoSize(mp)
  let img = sharp(source).resize(width, height, { fit: 'cover', kernel: 'lanczos3' })
  if (variant.flop) img = img.flop()
  if (variant.flip) img = img.flip()
  const upscaled = await img.raw().toBuffer({ resolveWithObject: true })
  // overlay with mid-grey is the identity, so the grain is zero-mean around the picture; a tiled
  // 509 px patch (not a multiple of the 8 px JPEG block) costs far less than full-size noise
  return await sharp(upscaled.data, { raw: upscaled.info })
    .composite([{ input: await grainTile(), raw: { width: GRAIN, height: GRAIN, channels: 3 }, tile: true, blend: 'overlay' }])
    .jpeg({ quality: 90, chromaSubsampling: '4:2:0' })
    .toBuffer()
}

const GRAIN = 509
let grain: Promise<Buffer> | undefined
const grainTile = async (): Promise<Buffer> => await (grain ??= sharp({ create: { width: GRAIN, height: GRAIN, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 6 } } }).raw().toBuffer())

/**
 * Writes one photo per VARIANTS entry, per installed photographic wallpaper and size, into
 * `dir/<mp>mp/<half>/`, reusing a finished set. Returns the files per size; empty when the package is missing.
 */
export async function makePhotos (dir: string, sizesMp: number[]): Promise<{ bySize: Map<number, string[]>, ms: number, cached: boolean }> {
  const t0 = performance.now()
  const sources = await wallpaperPhotos()
  const bySize = new Map<number, string[]>()
  let cached = true
  for (const mp of sizesMp) {
    const sub = path.join(dir, `${mp}mp`)
    const marker = path.join(sub, '.complete')
    const stamp = `${FORMAT}/${sources.join(',')}`
    const files = sources.flatMap((s) => VARIANTS.map((v) => path.join(sub, v.half, `${path.basename(path.dirname(path.dirname(path.dirname(s))))}${v.suffix}.jpg`)))
    bySize.set(mp, files)
    if (existsSync(marker) && (await readFile(marker, 'utf8')) === stamp) continue
    cached = false
    await rm(sub, { recursive: true, force: true })
    for (const half of new Set(VARIANTS.map((v) => v.half))) await mkdir(path.join(sub, half), { recursive: true })
    for (let i = 0; i < files.length; i++) await writeFile(files[i]!, await cameraJpeg(sources[Math.floor(i / VARIANTS.length)]!, mp, VARIANTS[i % VARIANTS.length]))
    await writeFile(marker, stamp)
  }
  return { bySize, ms: performance.now() - t0, cached }
}
