/** The text pool (searched for image → text): add. */
import { BadRequestError, ConflictError } from '../core/errors.js'
import type { NewText, TextTemplate } from '../backends/ports.js'
import { MAX_TEXT_CHARS, MAX_TEXTS_PER_CALL } from '../core/limits.js'
import { formatPrompt } from '../ml/index.js'
import { idProblem } from '../core/ids.js'
import type { Metadata } from '../core/types.js'
import { isPlainObject, sha256, type Core } from './core.js'

export interface TextInput { id?: string, text: string, metadata?: Metadata }

/**
 * The key a text is stored under (unique per collection): sha256 of the text itself, or, with a
 * template, of the template and the text. "pizza" added plain and "pizza" added through "an icon of {}"
 * are different vectors, so they are different entries; the same text through the same template is one.
 */
export function textKey (text: string, template: string | undefined): string {
  return sha256(template === undefined ? text : `${template}\u0000${text}`)
}

/** Checks a client's template: one "{}" where the text goes. Throws BadRequestError. */
export function checkTemplate (template: unknown): void {
  if (template === undefined) return
  if (typeof template !== 'string' || !template.includes('{}')) throw new BadRequestError('template must be a string with "{}" where each text goes, e.g. "an icon of {}"')
}

/**
 * Adds texts; the same text (exact string, through the same template) is stored once: later adds
 * are `duplicate` and answer the stored id (which may differ from the id they asked for). The whole call is validated first: a bad text or id throws BadRequestError naming
 * `items[i].…`, an id used by another text throws ConflictError, and nothing is stored.
 * With `template` (e.g. the model's "an icon of {}"), each text is a label: the label is stored
 * and returned by searches, and only its vector comes from the filled template.
 */
export async function addTexts (core: Core, items: TextInput[], opts: { template?: string | { model: true } } = {}): Promise<Array<{ id: string, status: 'indexed' | 'duplicate' }>> {
  const { backend, encoder } = core
  if (typeof opts.template !== 'object') checkTemplate(opts.template)
  if (!Array.isArray(items) || items.length === 0) throw new BadRequestError('items must be a non-empty array')
  if (items.length > MAX_TEXTS_PER_CALL) throw new BadRequestError(`items has ${items.length} entries; at most ${MAX_TEXTS_PER_CALL}`)
  const ids = new Map<string, number>()
  items.forEach((it, i) => {
    if (!isPlainObject(it)) throw new BadRequestError(`items[${i}] must be an object with a "text"`)
    if (typeof it.text !== 'string' || it.text.trim() === '') throw new BadRequestError(`items[${i}].text must be a non-empty string`)
    if (it.text.length > MAX_TEXT_CHARS) throw new BadRequestError(`items[${i}].text is longer than ${MAX_TEXT_CHARS} characters`)
    if (it.metadata !== undefined && !isPlainObject(it.metadata)) throw new BadRequestError(`items[${i}].metadata must be an object`)
    if (it.id !== undefined) {
      const problem = idProblem(it.id)
      if (problem !== undefined) throw new BadRequestError(`items[${i}].id ${problem}`)
      const first = ids.get(it.id)
      if (first !== undefined) throw new BadRequestError(`items[${i}].id "${it.id}" repeats items[${first}].id`)
      ids.set(it.id, i)
    }
  })

  // "the model's template" is keyed with the serving model's template, as a literal one would be
  const shas = items.map((it) => textKey(it.text, templateFor(opts.template, encoder.config.promptTemplate)))
  const [stored, usedIds] = await Promise.all([
    backend.texts.idsBySha([...new Set(shas)]),
    backend.texts.existingIds([...ids.keys()])
  ])
  const fresh: number[] = []
  const firstBySha = new Map<string, number>()
  items.forEach((it, i) => {
    const sha = shas[i]!
    if (stored.has(sha) || firstBySha.has(sha)) return
    if (it.id !== undefined && usedIds.has(it.id)) {
      throw new ConflictError(`items[${i}].id "${it.id}" is already used by another text; delete it first or choose another id`)
    }
    firstBySha.set(sha, i)
    fresh.push(i)
  })
  // during a model switch (and while the previous model is on standby) every text is embedded by both models, each with its own template
  const standby = core.standbyEncoder
  const [vectors, alts] = fresh.length === 0
    ? [[], undefined]
    : await Promise.all([
      encoder.encodeTexts(fresh.map((i) => encodedText(items[i]!.text, templateFor(opts.template, encoder.config.promptTemplate)))),
      standby?.encodeTexts(fresh.map((i) => encodedText(items[i]!.text, templateFor(opts.template, standby.config.promptTemplate))))
    ])
  const template: TextTemplate = opts.template === undefined ? null : typeof opts.template === 'string' ? { literal: opts.template } : { model: true }

  const rows: NewText[] = fresh.map((i, k) => {
    const it = items[i]!
    const row: NewText = { text: it.text, sha256: shas[i]!, metadata: it.metadata ?? {}, embedding: vectors[k]!, template, modelId: encoder.config.modelId }
    const alt = alts?.[k]
    if (alt !== undefined && standby !== undefined) row.alt = { modelId: standby.config.modelId, embedding: alt }
    if (it.id !== undefined) row.id = it.id
    return row
  })
  // one atomic write; it checks again (another call may have stored some meanwhile) and throws ConflictError on a taken id
  const writes = rows.length === 0 ? [] : await backend.texts.add(rows)
  const written = new Map<number, { id: string, status: 'indexed' | 'duplicate' }>()
  fresh.forEach((i, k) => {
    const w = writes[k]
    if (w === undefined || w.status === 'failed') throw new ConflictError(`items[${i}]: ${w?.status === 'failed' ? w.error : 'not stored'}`)
    written.set(i, { id: w.id, status: w.status })
  })
  return items.map((_, i) => {
    const own = written.get(i)
    if (own !== undefined) return own
    const first = firstBySha.get(shas[i]!)
    const id = first !== undefined ? written.get(first)!.id : stored.get(shas[i]!)!
    return { id, status: 'duplicate' as const }
  })
}

/** the template a model encodes with: a literal one, its own ("the model's template"), or none */
function templateFor (template: string | { model: true } | undefined, modelTemplate: string): string | undefined {
  return template === undefined ? undefined : typeof template === 'string' ? template : modelTemplate
}

/** what the encoder sees for a stored text: the text itself, or the template filled with it */
function encodedText (text: string, template: string | undefined): string {
  return template === undefined ? text : formatPrompt({ promptTemplate: template }, text)
}
