/** What the model-switch service tests (SQLite and PostgreSQL) search for, and check after a swap back. */
import assert from 'node:assert/strict'
import type { SearchRequest, Services } from '../../src/services/types.js'

/** a text search for the top 5 images */
export const query = (text: string): SearchRequest => ({ query: [{ text }], target: 'images', k: 5 })
/** the hits' ids, in order, as one string */
export const ids = (hits: Array<{ id: string }>): string => hits.map((h) => h.id).join(',')

/** the words the switch tests search for all through a switch */
export const WORDS = ['cat', 'car', 'pizza', 'tree', 'arrow']

/** each word's answer (ids, in order) from the serving model, before a switch */
export async function answersFor (s: Services): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const w of WORDS) out.set(w, ids(await s.search(query(w))))
  return out
}

/**
 * After a swap back to the model the searches in `before` were made with: the upload made during the
 * switch (`added-during-switch`) is in that model's store too, and the first 3 answers for "cat" and
 * "car" are those of before, the image deleted during the switch (`victim`) aside.
 */
export async function assertOldAnswersBack (s: Services, before: Map<string, string>, victim: string, where: string): Promise<void> {
  const added = await s.search({ query: [{ imageId: 'added-during-switch' }], target: 'images', k: 1, includeQueryImages: true })
  assert.equal(added[0]?.id, 'added-during-switch', `the upload reached ${where} too`)
  for (const w of ['cat', 'car']) {
    const got = (await s.search(query(w))).map((h) => h.id).filter((id) => id !== 'added-during-switch' && id !== victim)
    const want = before.get(w)!.split(',').filter((id) => id !== victim)
    assert.deepEqual(got.slice(0, 3), want.slice(0, 3))
  }
}
