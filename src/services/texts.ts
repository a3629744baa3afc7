/** The text pool (searched for image → text): add and delete. */
import { randomUUID } from 'node:crypto'
import { BadRequestError, ConflictError } from '../errors.js'
import type { VectorRow } from '../index/index.js'
import { MAX_TEXT_CHARS, MAX_TEXTS_PER_CALL } from '../limits.js'
import { formatPrompt } from '../ml/index.js'
import { idProblem } from '../storage/index.js'
import { contentId } from './ingest-images.js'
import type { Metadata } from './types.js'
import { isPlainObject, sha256, type Core } from './core.js'

export interface TextInput { id?: string, text: string, metadata?: Metadata }

/**
 * Adds texts; the same text (exact string) is stored once: later adds are `duplicate` with the
 * stored id. The whole call is validated first: a bad text or id throws BadRequestError naming
 * `items[i].…`, an id used by another text throws ConflictError, and nothing is stored.
 * With `template` (e.g. the model's "an icon of {}"), each text is a label: the label is stored
 * and returned by searches, and only its vector comes from the filled template.
 */
export async function addTexts (core: Core, items: TextInput[], opts: { template?: string } = {}): Promise<Array<{ id: string, status: 'indexed' | 'duplicate' }>> {
  const { store, encoder } = core
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

  const shas = items.map((it) => sha256(it.text))
  const plan = (): { fresh: number[], firstBySha: Map<string, number> } => {
    const fresh: number[] = []
    const firstBySha = new Map<string, number>()
    items.forEach((it, i) => {
      const sha = shas[i]!
      if (store.texts.idBySha(sha) !== undefined || firstBySha.has(sha)) return
      if (it.id !== undefined && store.texts.ref(it.id) !== undefined) {
        throw new ConflictError(`items[${i}].id "${it.id}" is already used by another text; delete it first or choose another id`)
      }
      firstBySha.set(sha, i)
      fresh.push(i)
    })
    return { fresh, firstBySha }
  }
  const before = plan()
  const vectors = before.fresh.length === 0 ? [] : await encoder.encodeTexts(before.fresh.map((i) => encodedText(items[i]!.text, opts.template)))
  const vectorOf = new Map(before.fresh.map((i, k) => [i, vectors[k]!]))

  const rows: VectorRow[] = []
  const out = store.transaction(() => {
    const { fresh, firstBySha } = plan() // again: another call may have stored some meanwhile
    const assigned = new Map<number, string>()
    for (const i of fresh) {
      const it = items[i]!
      const vector = vectorOf.get(i)
      if (vector === undefined) throw new Error('text was not encoded') // cannot happen: fresh only shrinks
      let id = it.id ?? contentId(shas[i]!)
      if (it.id === undefined && store.texts.ref(id) !== undefined) id = randomUUID()
      const ref = store.texts.insert({ id, text: it.text, sha256: shas[i]!, metadata: it.metadata ?? {}, embedding: vector })
      rows.push({ ...ref, vector })
      assigned.set(i, id)
    }
    return items.map((_, i) => {
      const id = assigned.get(i)
      if (id !== undefined) return { id, status: 'indexed' as const }
      const first = firstBySha.get(shas[i]!)
      const existing = first !== undefined ? assigned.get(first) : store.texts.idBySha(shas[i]!)
      return { id: existing!, status: 'duplicate' as const }
    })
  })
  if (rows.length > 0) await core.texts.append(rows).catch(() => {})
  return out
}

/** what the encoder sees for a stored text: the text itself, or the template filled with it */
function encodedText (text: string, template: string | undefined): string {
  return template === undefined ? text : formatPrompt({ promptTemplate: template }, text)
}
