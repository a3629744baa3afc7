/**
 * A user's captions in image → text, against the demo pool's own labels, through the built server
 * with the real default model and the whole demo pool: the everyday words (dog, pizza, red car…) added
 * through POST /v1/texts with a template, and whether each ranks in the top 10 texts for the demo
 * images of its concept (`target: "texts"`), beside the demo's own label of that image.
 *
 * Measured here (align-mini v3, 137 image/word cases): with the model's template "an icon of {}" the
 * user's word is in the top 10 for 88 (0.64), the demo's label for 134 (0.98); with no template 92,
 * "{} emoji" 95, "a photo of a {}" 12. The gap to the demo's labels is the words, not the encoding: the
 * demo labels are the CLDR names the model was trained on ("dog face"), the user's are what people type
 * ("dogs"). What the template decides is whether a caption can compete at all: a photo template sinks it.
 *
 * Why a floor and not parity with the demo's labels: 5 of the 137 cases pair a word with a concept that no
 * training text ties it to (hospital → ambulance, school → graduation cap twice, warning → police car
 * light, angry face → face with symbols on mouth: the pool has no hospital, school, warning or angry-face
 * image); halloween → spider hangs on 2 of 11 texts. Only resemblance can rank those (the two retrained
 * models below got angry face so, none of the others). Reranking by hubness (CSLS) measured 87–90, a
 * recipe of single CLDR keywords 87, and that recipe with every image's alt-texts as in-batch positives
 * 94: the rest is a word landing between its many images, below each image's own label.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { captionCases, demoLabelIds, measureTemplate, type CaptionCase, type RankingRates } from '../helpers/caption-ranking.js'
import { startServer, type RunningServer } from '../helpers/spawn-server.js'
import { TIMEOUT } from '../helpers/timeouts.js'

const MODEL_DIR = 'models/align-mini'
const POOL = path.resolve('demo/pool')
/** below these the model or the text pool regressed (measured 0.98 and 0.64, see above) */
const DEMO_FLOOR = 0.9
const USER_FLOOR = 0.55
/** the model's template and none encode short words about equally well for align-mini (0.64 vs 0.67) */
const SAME_TOLERANCE = 0.1
/** a photo template (the old classify example's) loses most captions (0.09 against 0.64) */
const PHOTO_GAP = 0.4

function skipReason (): string | undefined {
  if (!existsSync(path.join(POOL, 'manifest.jsonl'))) return 'demo/pool/manifest.jsonl is missing'
  const metrics = JSON.parse(readFileSync(path.join(MODEL_DIR, 'metrics.json'), 'utf8')) as { training?: { steps?: number } }
  if ((metrics.training?.steps ?? 0) < 100) return `${MODEL_DIR} is the untrained placeholder`
  return undefined
}

const rate = (n: number, r: RankingRates): number => n / r.cases
const show = (r: RankingRates): string => `${JSON.stringify(r.template)}: user ${r.user}/${r.cases} = ${rate(r.user, r).toFixed(2)}, demo label ${r.demo}/${r.cases} = ${rate(r.demo, r).toFixed(2)}, ${r.duplicates} duplicates`

describe('user captions against the demo pool\'s labels (image → text)', { timeout: TIMEOUT.soak, skip: skipReason() }, () => {
  let tmp: string
  let server: RunningServer
  let cases: CaptionCase[]
  let demoIds: Map<string, string>
  let modelTemplate: string
  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'align-user-captions-'))
    server = await startServer({ DATA_DIR: path.join(tmp, 'data'), IMPORT_DIR: path.join(tmp, 'import'), DEMO_POOL: POOL, MODEL_DIR, API_KEY: '', API_KEY_READS: '', RATE_LIMIT_MAX: '', LOG_LEVEL: 'warn' }, { timeoutMs: TIMEOUT.server })
    const labels = new Set(readFileSync(path.join(POOL, 'manifest.jsonl'), 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => (JSON.parse(l) as { label: string }).label))
    // the demo pool's job and its labels: done when no job runs and every label is in the text pool
    for (;;) {
      const { jobs } = await (await fetch(`${server.url}/v1/index-jobs?limit=5`)).json() as { jobs: Array<{ status: string }> }
      const info = await (await fetch(`${server.url}/v1/info`)).json() as { counts: { texts: number }, model: { promptTemplate: string } }
      modelTemplate = info.model.promptTemplate
      if (jobs.length > 0 && jobs.every((j) => j.status === 'done') && info.counts.texts === labels.size) break
      assert.ok(jobs.every((j) => j.status !== 'failed' && j.status !== 'cancelled'), 'the demo pool job did not finish')
      await new Promise((resolve) => setTimeout(resolve, 1000))
    }
    cases = await captionCases(server.url)
    demoIds = await demoLabelIds(server.url)
  }, { timeout: TIMEOUT.soak })
  after(async () => {
    await server?.stop()
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true })
  })

  test('with the model\'s template, a user\'s word ranks in the top 10 for its concept\'s image above a floor; a photo template sinks it', async () => {
    assert.ok(cases.length >= 100, `only ${cases.length} everyday-word cases have a demo image`)
    const withModel = await measureTemplate(server.url, cases, demoIds, modelTemplate)
    const plain = await measureTemplate(server.url, cases, demoIds, null)
    const photo = await measureTemplate(server.url, cases, demoIds, 'a photo of a {}')
    console.log(`top 10 texts for the demo image of each everyday word:\n  ${[withModel, plain, photo].map(show).join('\n  ')}`)
    assert.ok(rate(withModel.demo, withModel) >= DEMO_FLOOR, show(withModel))
    assert.ok(rate(withModel.user, withModel) >= USER_FLOOR, show(withModel))
    assert.ok(Math.abs(rate(withModel.user, withModel) - rate(plain.user, plain)) <= SAME_TOLERANCE, `${show(withModel)}\n${show(plain)}`)
    assert.ok(rate(withModel.user, withModel) - rate(photo.user, photo) >= PHOTO_GAP, `${show(withModel)}\n${show(photo)}`)
    // a word that is also a demo label (pizza, dog) with the model's template is the demo's entry: the
    // answer names the id that holds it, so the user's caption ranks exactly where the demo's does
    assert.ok(withModel.duplicates > 0 && plain.duplicates === 0, `${show(withModel)}\n${show(plain)}`)
  })
})
