// Builds the bundled demo pool: PNGs of held-out icon/emoji sets that align-mini never saw in training.
// Usage: node tools/make-demo-pool.mjs <node_modules with @iconify/json and emojibase-data> <out dir>
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import sharp from 'sharp'

const [depsDir, outDir] = process.argv.slice(2)
const require = createRequire(path.resolve(depsDir, 'x.js'))
const iconifyDir = path.dirname(require.resolve('@iconify/json/package.json'))
const emoji = require('emojibase-data/en/data.json')
const collections = JSON.parse(fs.readFileSync(path.join(iconifyDir, 'collections.json'), 'utf8'))
const PLAN = { twemoji: 2200, emojione: 400, tabler: 250, carbon: 150 }
const SIZE = 128

const hexKey = (h) => h.toLowerCase().split('-').filter((p) => p !== 'fe0f').join('-')
const labels = new Map()
for (const e of emoji) for (const x of [e, ...(e.skins ?? [])]) labels.set(hexKey(x.hexcode), x.label.toLowerCase())
const slug = (s) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')
const bySlug = new Map([...labels.values()].map((l) => [slug(l), l]))
let rng = 7
const rand = () => { rng = (rng * 1664525 + 1013904223) >>> 0; return rng / 2 ** 32 }

fs.mkdirSync(outDir, { recursive: true })
const manifest = []
for (const [prefix, count] of Object.entries(PLAN)) {
  const set = JSON.parse(fs.readFileSync(path.join(iconifyDir, 'json', `${prefix}.json`), 'utf8'))
  const hexOf = new Map(Object.entries(set.chars ?? {}).map(([h, n]) => [n, h]))
  const names = Object.keys(set.icons).filter((n) => !set.icons[n].hidden)
  // the cat-face family and the waving-hand family are kept whole: the tests and README use them
  const keep = names.filter((n) => /^(cat|grinning-cat|crying-cat|waving-hand|automobile|dog-face|red-heart|house)/.test(n))
  const rest = names.filter((n) => !keep.includes(n)).map((n) => [rand(), n]).sort((a, b) => a[0] - b[0]).map((x) => x[1])
  for (const name of [...keep, ...rest].slice(0, count)) {
    const icon = set.icons[name]
    const w = icon.width ?? set.width ?? 16; const h = icon.height ?? set.height ?? 16
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${SIZE}" height="${SIZE}" viewBox="${icon.left ?? 0} ${icon.top ?? 0} ${w} ${h}">${icon.body.replaceAll('currentColor', '#000')}</svg>`
    const hex = hexOf.get(name)
    const label = (hex && labels.get(hexKey(hex))) ?? bySlug.get(name) ?? name.replace(/-/g, ' ')
    const file = `${prefix}-${name}.png`
    const png = await sharp(Buffer.from(svg)).flatten({ background: '#ffffff' }).png({ palette: true, effort: 10 }).toBuffer()
    fs.writeFileSync(path.join(outDir, file), png)
    manifest.push({ file, label, set: prefix, license: collections[prefix].license.spdx })
  }
}
fs.writeFileSync(path.join(outDir, 'manifest.jsonl'), manifest.map((m) => JSON.stringify(m)).join('\n') + '\n')
console.log(`demo pool: ${manifest.length} images in ${outDir}`)
