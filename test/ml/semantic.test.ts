/**
 * Behavioural checks of the real default model on the demo pool (demo/pool; the shipped model saw these styles,
 * the selection run in its model card did not):
 * the product's promises, text → image and image + text → image.
 */
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { cosine, l2normalize, loadEncoder, weightedSum } from '../../src/ml/index.js'
import type { AlignEncoder } from '../../src/ml/index.js'
import { TIMEOUT } from '../helpers/timeouts.js'

const MODEL_DIR = 'models/align-mini'
const POOL = 'demo/pool'
const MANIFEST = path.join(POOL, 'manifest.jsonl')
// measured on the demo pool's twemoji: align-mini v3 112/132 = 0.848, v2 108/132 = 0.818; a retrained model's noise fits above 0.75
const MIN_WORD_PAIR_RATE = 0.75

interface PoolEntry { file: string, label: string, set: string }

/** Why these tests cannot run here, if they cannot: no demo pool, or the committed model is the untrained placeholder. */
function skipReason (): string | undefined {
  if (!existsSync(MANIFEST)) return `${MANIFEST} is missing`
  const metrics = JSON.parse(readFileSync(path.join(MODEL_DIR, 'metrics.json'), 'utf8')) as { training?: { steps?: number } }
  const steps = metrics.training?.steps ?? 0
  if (steps < 100) return `${MODEL_DIR} is the untrained placeholder (metrics.json training.steps = ${steps})`
  return undefined
}

const skip = skipReason()

describe('semantic search with the default model', { timeout: TIMEOUT.model, skip }, () => {
  let enc: AlignEncoder
  let twemoji: Map<string, PoolEntry>
  before(async () => {
    const entries = readFileSync(MANIFEST, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as PoolEntry)
    twemoji = new Map(entries.filter((e) => e.set === 'twemoji').map((e) => [e.label, e]))
    enc = await loadEncoder({ modelDir: MODEL_DIR, executionProvider: 'cpu' })
  })
  after(async () => { await enc?.close() })

  async function embedLabels (labels: string[]): Promise<Map<string, Float32Array>> {
    const files = labels.map((l) => {
      const e = twemoji.get(l)
      assert.ok(e, `demo pool has no twemoji image labelled ${JSON.stringify(l)}`)
      return e.file
    })
    const vecs = await enc.encodeImages(await Promise.all(files.map(async (f) => await readFile(path.join(POOL, f)))))
    return new Map(labels.map((l, i) => [l, vecs[i]!]))
  }

  const ranked = (query: Float32Array, gallery: Map<string, Float32Array>): string[] =>
    [...gallery].map(([label, v]) => ({ label, score: cosine(query, v) })).sort((a, b) => b.score - a.score).map((r) => r.label)

  test('text "cat face" ranks the cat-face image first, above the automobile', async () => {
    const wanted = ['cat face', 'automobile', 'house', 'rocket', 'pizza', 'banana', 'soccer ball']
    const gallery = await embedLabels(wanted.filter((l) => twemoji.has(l)))
    const [q] = await enc.encodeTexts(['cat face'])
    const order = ranked(q!, gallery)
    assert.ok(order.indexOf('cat face') < order.indexOf('automobile'), `ranking: ${order.join(' > ')}`)
    assert.equal(order[0], 'cat face', `ranking: ${order.join(' > ')}`)
  })

  const TONES = ['light', 'medium-light', 'medium', 'medium-dark', 'dark']

  /** For each tone: does image(base) + text("<tone> skin tone") rank that tone's variant first among the five? */
  async function tonesRankedFirst (base: string): Promise<boolean[]> {
    const images = await embedLabels([base, ...TONES.map((t) => `${base}: ${t} skin tone`)])
    const mods = await enc.encodeTexts(TONES.map((t) => `${t} skin tone`))
    return TONES.map((tone, i) => {
      const query = l2normalize(weightedSum([images.get(base)!, mods[i]!]))
      // the query image itself is not an answer (as in tools/align_mini/evaluate.py)
      return ranked(query, new Map(TONES.map((t) => [t, images.get(`${base}: ${t} skin tone`)!])))[0] === tone
    })
  }

  test('image("waving hand") + text("<tone> skin tone") ranks that tone\'s variant first, for each of the five tones', async () => {
    const first = await tonesRankedFirst('waving hand')
    assert.deepEqual(first, TONES.map(() => true), `ranked first per tone: ${TONES.map((t, i) => `${t}=${String(first[i])}`).join(', ')}`)
  })

  test('across every skin-tone family in the demo pool, the modifier picks its variant far above chance (1 in 5)', async () => {
    const bases = [...twemoji.keys()].filter((l) => TONES.every((t) => twemoji.has(`${l}: ${t} skin tone`)))
    assert.ok(bases.length >= 5, `families: ${bases.join(', ')}`)
    const hits = (await Promise.all(bases.map(tonesRankedFirst))).flat()
    const rate = hits.filter(Boolean).length / hits.length
    // align-mini v2 measured 21/30 = 0.70 here; 0.5 leaves room for a retrained model's noise
    assert.ok(rate >= 0.5, `modified emoji first in ${hits.filter(Boolean).length}/${hits.length} queries`)
  })

  /** (base, extra words, variant) where the variant's name is the base's plus 1 to 3 words: "dog" + "guide" → "guide dog". */
  function wordPairs (labels: string[]): Array<[string, string, string]> {
    const words = new Map(labels.map((l) => [l, l.split(/[^a-z0-9]+/).filter(Boolean)]))
    const pairs: Array<[string, string, string]> = []
    for (const b of labels) {
      for (const v of labels) {
        const wb = words.get(b)!
        const wv = words.get(v)!
        const extra = wv.filter((w) => !wb.includes(w))
        if (b !== v && !b.includes(':') && !v.includes(':') && wb.every((w) => wv.includes(w)) && extra.length > 0 && extra.length <= 3 && wv.length === wb.length + extra.length) pairs.push([b, extra.join(' '), v])
      }
    }
    return pairs
  }

  test('image(base) + text(extra words) ranks the variant higher than the image alone (or keeps it first), for most such pairs in the pool', async () => {
    const labels = [...twemoji.keys()]
    const pairs = wordPairs(labels)
    assert.ok(pairs.length >= 20, `pairs: ${pairs.length}`)
    const gallery = await embedLabels(labels)
    const mods = await enc.encodeTexts(pairs.map((p) => p[1]))
    const misses: string[] = []
    pairs.forEach(([base, extra, variant], i) => {
      // the query image itself is not an answer (as in tools/align_mini/evaluate.py)
      const others = new Map([...gallery].filter(([l]) => l !== base))
      const alone = ranked(gallery.get(base)!, others).indexOf(variant)
      const withText = ranked(l2normalize(weightedSum([gallery.get(base)!, mods[i]!])), others).indexOf(variant)
      // a variant already first cannot rank higher: keeping it first counts
      if (!(withText < alone || withText === 0)) misses.push(`${base} + "${extra}" → ${variant} (${alone + 1} → ${withText + 1})`)
    })
    const rate = 1 - misses.length / pairs.length
    console.log(`# image + extra words, variant ranked higher: ${pairs.length - misses.length}/${pairs.length} = ${rate.toFixed(3)}; not: ${misses.slice(0, 10).join('; ')}`)
    assert.ok(rate >= MIN_WORD_PAIR_RATE, `variant ranked higher in ${pairs.length - misses.length}/${pairs.length} pairs; not: ${misses.join('; ')}`)
  })
})
