// Rasterizes the licensed @iconify/json sets into a training corpus for align-mini.
// Output (git-ignored): <out>/images.u8 (N×S×S×3 RGB, alpha flattened onto white) and <out>/meta.jsonl.
// Usage: node tools/prepare-corpus.mjs <node_modules with @iconify/json and emojibase-data> <out dir>
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import sharp from 'sharp'

const [depsDir, outDir] = process.argv.slice(2)
const SIZE = Number(process.env.CORPUS_SIZE ?? 48)
const ICONS_PER_SET = Number(process.env.ICONS_PER_SET ?? 260)
const SEED = Number(process.env.SEED ?? 1)
const require = createRequire(path.resolve(depsDir, 'x.js'))
const iconifyDir = path.dirname(require.resolve('@iconify/json/package.json'))
const collections = JSON.parse(fs.readFileSync(path.join(iconifyDir, 'collections.json'), 'utf8'))
const emojiData = require('emojibase-data/en/data.json')
const messages = require('emojibase-data/en/messages.json')
// shortcodes people type (":dog:", ":thumbsup:"), keyed by hexcode; richer alt-texts for the v3 recipe
const shortcodeSources = ['github', 'emojibase', 'cldr', 'iamcal', 'joypixels'].map((n) => require(`emojibase-data/en/shortcodes/${n}.json`))

// Derived weights are redistributed, so share-alike, non-commercial and GPL sets are left out.
const ALLOWED_LICENSES = new Set(['MIT', 'Apache-2.0', 'ISC', 'BSD-3-Clause', 'CC0-1.0', 'Unlicense', 'CC-BY-3.0', 'CC-BY-4.0', 'OFL-1.1'])
export const HELD_OUT = { emoji: ['twemoji', 'emojione', 'emojione-monotone'], icons: ['tabler', 'carbon', 'fa6-solid'] }
// The held-out sets are still rasterized and flagged heldOut; whether training uses them is train.py's --train-on-all.
const heldOut = new Set([...HELD_OUT.emoji, ...HELD_OUT.icons])

const groupName = new Map(messages.groups.map((g) => [g.order, g.message]))
const subgroupName = new Map(messages.subgroups.map((g) => [g.order, g.message.replace(/-/g, ' ')]))
const slug = (s) => s.toLowerCase().normalize('NFKD').replace(/[\u0300-\u036f]/g, '').replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')
const hexKey = (h) => h.toLowerCase().split('-').filter((p) => p !== 'fe0f').join('-')
const byHex = new Map(); const bySlug = new Map(); const byCompact = new Map()
for (const e of emojiData) {
  const all = [e, ...(e.skins ?? []).map((s) => ({ ...s, tags: e.tags, group: e.group, subgroup: e.subgroup, base: e }))]
  for (const x of all) {
    byHex.set(hexKey(x.hexcode), x)
    bySlug.set(slug(x.label), x)
    byCompact.set(slug(x.label).replace(/-/g, ''), x)
  }
}

function shortcodesOf (hexcode) {
  const out = []
  for (const src of shortcodeSources) {
    const v = src[hexcode] ?? src[hexcode.split('-').filter((p) => p !== 'FE0F').join('-')]
    for (const c of [v ?? []].flat()) out.push(c.replace(/[_-]+/g, ' ').replace(/[0-9]+$/, '').trim())
  }
  return out
}

let rng = SEED >>> 0
const rand = () => { rng = (rng * 1664525 + 1013904223) >>> 0; return rng / 2 ** 32 }
const shuffle = (a) => { for (let i = a.length - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); [a[i], a[j]] = [a[j], a[i]] } return a }
const words = (name) => name.replace(/[-_]+/g, ' ').replace(/([a-z])([0-9])/g, '$1 $2').trim()

function emojiTexts (e, name) {
  const label = e.label.toLowerCase()
  const base = e.base ?? e
  const texts = [label, `${label} emoji`, words(name), `an emoji of ${label}`]
  if (base.tags?.length) texts.push(base.tags.join(' '), `${label} ${base.tags.slice(0, 3).join(' ')}`)
  const g = groupName.get(base.group); const sg = subgroupName.get(base.subgroup)
  if (g) texts.push(`${g} emoji`, `${label}, ${g}`)
  if (sg) texts.push(`${sg}: ${label}`)
  return texts
}

function svgFor (set, icon) {
  const w = icon.width ?? set.width ?? 16; const h = icon.height ?? set.height ?? 16
  const l = icon.left ?? set.left ?? 0; const t = icon.top ?? set.top ?? 0
  const body = icon.body.replaceAll('currentColor', '#000')
  return `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${SIZE * 2}" height="${SIZE * 2}" viewBox="${l} ${t} ${w} ${h}">${body}</svg>`
}

const jobs = []
for (const [prefix, info] of Object.entries(collections)) {
  if (!ALLOWED_LICENSES.has(info.license?.spdx)) continue
  const set = JSON.parse(fs.readFileSync(path.join(iconifyDir, 'json', `${prefix}.json`), 'utf8'))
  const isEmoji = info.category === 'Emoji'
  const nameToHex = new Map(Object.entries(set.chars ?? {}).map(([hex, n]) => [n, hex]))
  const aliasesOf = new Map()
  for (const [a, v] of Object.entries(set.aliases ?? {})) { if (!aliasesOf.has(v.parent)) aliasesOf.set(v.parent, []); aliasesOf.get(v.parent).push(a) }
  const categoryOf = new Map()
  for (const [c, names] of Object.entries(set.categories ?? {})) for (const n of names) categoryOf.set(n, c.toLowerCase())
  let names = Object.keys(set.icons).filter((n) => !set.icons[n].hidden)
  if (!isEmoji && !heldOut.has(prefix)) names = shuffle(names).slice(0, ICONS_PER_SET)
  if (heldOut.has(prefix) && !isEmoji) names = shuffle(names).slice(0, 1500)
  for (const name of names) {
    const hex = nameToHex.get(name)
    const e = isEmoji ? ((hex && byHex.get(hexKey(hex))) ?? bySlug.get(name) ?? byCompact.get(name.replace(/-/g, ''))) : undefined
    let texts; let concept; let group = null; let label = null; let hexcode = null
    // raw caption material for the richer recipes (train.py --captions rich): single keywords, shortcodes, aliases, category
    const extra = { alts: [], category: null }
    if (e) {
      const base = e.base ?? e
      extra.alts.push(...(base.tags ?? []), ...shortcodesOf(e.hexcode), ...(e.base ? shortcodesOf(e.base.hexcode) : []), words(name))
      extra.category = subgroupName.get(base.subgroup) ?? null
      texts = emojiTexts(e, name); concept = `emoji:${hexKey(e.hexcode)}`; label = e.label.toLowerCase(); hexcode = e.hexcode
      group = groupName.get((e.base ?? e).group) ?? null
    } else {
      const w = words(name)
      texts = [w, `${w} icon`, `an icon of ${w}`, ...(aliasesOf.get(name) ?? []).map(words)]
      const c = categoryOf.get(name)
      if (c) texts.push(`${c}: ${w}`, `${w} ${c}`)
      if (isEmoji) texts.push(`${w} emoji`)
      concept = `name:${slug(w)}`; label = w
      extra.alts.push(...(aliasesOf.get(name) ?? []).map(words))
      extra.category = categoryOf.get(name) ?? null
    }
    const alts = [...new Set(extra.alts.map((a) => a.toLowerCase()).filter((a) => a && a !== label))]
    jobs.push({ set: prefix, name, isEmoji, heldOut: heldOut.has(prefix), license: info.license.spdx, texts: [...new Set(texts)], alts, category: extra.category, concept, label, group, hexcode, svg: svgFor(set, set.icons[name]) })
  }
}

fs.mkdirSync(outDir, { recursive: true })
const fd = fs.openSync(path.join(outDir, 'images.u8'), 'w')
const meta = fs.createWriteStream(path.join(outDir, 'meta.jsonl'))
let ok = 0; let bad = 0
const render = (svg) => sharp(Buffer.from(svg), { limitInputPixels: 1e7 }).flatten({ background: '#ffffff' })
  .resize(SIZE, SIZE, { kernel: 'linear', fit: 'fill' }).removeAlpha().raw().toBuffer()
const CHUNK = 64
for (let i = 0; i < jobs.length; i += CHUNK) {
  const batch = jobs.slice(i, i + CHUNK)
  const results = await Promise.allSettled(batch.map((j) => render(j.svg)))
  results.forEach((r, k) => {
    if (r.status !== 'fulfilled' || r.value.length !== SIZE * SIZE * 3) { bad++; return }
    fs.writeSync(fd, r.value)
    const { svg, ...m } = batch[k]
    meta.write(JSON.stringify(m) + '\n'); ok++
  })
  if ((i / CHUNK) % 100 === 0) console.log(`rasterized ${ok}/${jobs.length} (${bad} failed)`)
}
fs.closeSync(fd); meta.end()
console.log(`done: ${ok} images, ${bad} failed, size ${SIZE}`)
