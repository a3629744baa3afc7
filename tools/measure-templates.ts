/**
 * Measures which prompt templates suit a model for the user's captions (POST /v1/texts "template"),
 * against a running server that holds the whole demo pool (as on a first start), and writes
 * <model dir>/templates.json for the model card (tools/align_mini/model_card.py). The measure is the
 * one test/services/user-captions.test.ts asserts: the everyday words as captions, in the top 10
 * texts for the demo images of their concept, beside the demo's own labels.
 * Usage: npx tsx tools/measure-templates.ts <server URL> [model dir, default models/align-mini]
 */
import { writeFileSync } from 'node:fs'
import { captionCases, demoLabelIds, measureTemplate } from '../test/helpers/caption-ranking.js'

const TEMPLATES = ['an icon of {}', null, '{} emoji', 'a photo of a {}', 'a photo of {}.']
const base = process.argv[2]
const modelDir = process.argv[3] ?? 'models/align-mini'
if (base === undefined) throw new Error('usage: npx tsx tools/measure-templates.ts <server URL> [model dir]')
const info = await (await fetch(`${base}/v1/info`)).json() as { model: { modelId: string, promptTemplate: string }, counts: { images: number, texts: number } }
const cases = await captionCases(base)
const ids = await demoLabelIds(base)
const rows = []
for (const t of TEMPLATES) rows.push(await measureTemplate(base, cases, ids, t))
const out = { modelId: info.model.modelId, promptTemplate: info.model.promptTemplate, images: info.counts.images, demoLabels: ids.size, k: 10, rows }
writeFileSync(`${modelDir}/templates.json`, JSON.stringify(out, null, 2) + '\n')
console.log(JSON.stringify(out))
