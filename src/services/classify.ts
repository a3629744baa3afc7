/** Zero-shot classification: softmax over cosine(image, text(template(label))) / temperature. */
import { BadRequestError } from '../core/errors.js'
import { MAX_LABEL_CHARS, MAX_LABELS, MIN_LABELS } from '../core/limits.js'
import { cosine } from '../core/vector-math.js'
import type { Core } from './core.js'

export async function classify (core: Core, image: Buffer, labels: string[], template?: string): Promise<Array<{ label: string, probability: number, score: number }>> {
  if (!Buffer.isBuffer(image) || image.length === 0) throw new BadRequestError('image must be non-empty image bytes')
  if (!Array.isArray(labels) || labels.length === 0) throw new BadRequestError('labels must be a non-empty array of strings')
  if (labels.length < MIN_LABELS) throw new BadRequestError(`labels needs at least ${MIN_LABELS} entries: the probabilities are a softmax over the labels, so a single label always gets 1`)
  if (labels.length > MAX_LABELS) throw new BadRequestError(`labels has ${labels.length} entries; at most ${MAX_LABELS}`)
  labels.forEach((l, i) => {
    if (typeof l !== 'string' || l.trim() === '') throw new BadRequestError(`labels[${i}] must be a non-empty string`)
    if (l.length > MAX_LABEL_CHARS) throw new BadRequestError(`labels[${i}] is longer than ${MAX_LABEL_CHARS} characters`)
  })
  const tpl = template ?? core.encoder.config.promptTemplate
  if (typeof tpl !== 'string' || !tpl.includes('{}')) throw new BadRequestError('template must be a string containing "{}" (where the label goes)')
  const [[img], texts] = await Promise.all([
    core.encoder.encodeImages([image]),
    core.encoder.encodeTexts(labels.map((l) => tpl.replaceAll('{}', l)))
  ])
  const scores = texts.map((t) => cosine(img!, t))
  const temperature = core.encoder.config.temperature > 0 ? core.encoder.config.temperature : 1
  const logits = scores.map((s) => s / temperature)
  const max = Math.max(...logits)
  const exps = logits.map((x) => Math.exp(x - max))
  const sum = exps.reduce((a, b) => a + b, 0)
  return labels.map((label, i) => ({ label, probability: exps[i]! / sum, score: scores[i]! }))
}
