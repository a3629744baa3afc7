/**
 * How often a user's captions rank in the top k for the demo image of their concept (image → text,
 * `target: "texts"`), against the demo pool's own labels, through a running server's HTTP API. The
 * user's captions are the everyday-words queries (test/fixtures/everyday-words.json); each is added
 * through POST /v1/texts with a template, measured, and deleted again, so one server measures many
 * templates. Used by test/services/user-captions.test.ts and tools/measure-templates.ts (the model card).
 */
import { readFileSync } from 'node:fs'

export const WORDS = 'test/fixtures/everyday-words.json'

interface Query { q: string, labels: string[] }
/** one everyday word and a demo image of its concept, with the demo label that image carries */
export interface CaptionCase { word: string, imageId: string, label: string }
export interface RankingRates {
  template: string | null
  cases: number
  /** the user's word (its stored id, or the id a duplicate answer named) in the top k */
  user: number
  /** the demo's own label of the image in the top k */
  demo: number
  /** words the server answered `duplicate` for (the same text and template already stored) */
  duplicates: number
}

async function call<T> (base: string, method: string, route: string, body?: unknown): Promise<T> {
  const res = await fetch(base + route, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const json = await res.json() as T
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${JSON.stringify(json)}`)
  return json
}

/** Every row of a listing (GET /v1/images or /v1/texts), page by page. */
async function listAll<T> (base: string, route: string, filter: Record<string, unknown>): Promise<T[]> {
  const out: T[] = []
  let after: string | null = null
  do {
    const q = `?limit=1000&filter=${encodeURIComponent(JSON.stringify(filter))}${after === null ? '' : `&after=${encodeURIComponent(after)}`}`
    const page: { items: T[], next: string | null } = await call(base, 'GET', route + q)
    out.push(...page.items)
    after = page.next
  } while (after !== null)
  return out
}

/**
 * The cases: for each everyday word, the first of its accepted labels that a demo image carries,
 * and every demo image with that label (found by GET /v1/images?filter={"label":…}).
 */
export async function captionCases (base: string): Promise<CaptionCase[]> {
  const queries = (JSON.parse(readFileSync(WORDS, 'utf8')) as { queries: Query[] }).queries
  const cases: CaptionCase[] = []
  for (const q of queries) {
    for (const label of q.labels) {
      const images = await listAll<{ id: string }>(base, '/v1/images', { label, demo: true })
      if (images.length === 0) continue
      for (const img of images) cases.push({ word: q.q, imageId: img.id, label })
      break
    }
  }
  return cases
}

/** The demo pool's label texts: text → id. */
export async function demoLabelIds (base: string): Promise<Map<string, string>> {
  const texts = await listAll<{ id: string, text: string }>(base, '/v1/texts', { demo: true })
  return new Map(texts.map((t) => [t.text, t.id]))
}

/**
 * Adds the cases' words as the user's captions (ids `user-<n>`, metadata {userCaption: true}) with
 * `template` (null: none), ranks the texts for each case's image, and deletes the captions again.
 */
export async function measureTemplate (base: string, cases: CaptionCase[], demoIds: Map<string, string>, template: string | null, k = 10): Promise<RankingRates> {
  const words = [...new Set(cases.map((c) => c.word))]
  const added = await call<{ items: Array<{ id: string, status: string }> }>(base, 'POST', '/v1/texts', {
    texts: words.map((text, i) => ({ id: `user-${i}`, text, metadata: { userCaption: true } })),
    ...(template === null ? {} : { template })
  })
  const stored = new Map(words.map((w, i) => [w, added.items[i]!.id]))
  let user = 0
  let demo = 0
  try {
    for (const c of cases) {
      const found = await call<{ results: Array<{ id: string }> }>(base, 'POST', '/v1/search', { query: [{ imageId: c.imageId }], target: 'texts', k })
      const ids = new Set(found.results.map((r) => r.id))
      if (ids.has(stored.get(c.word)!)) user++
      const demoId = demoIds.get(c.label)
      if (demoId !== undefined && ids.has(demoId)) demo++
    }
  } finally {
    await call(base, 'DELETE', `/v1/texts?filter=${encodeURIComponent(JSON.stringify({ userCaption: true }))}`)
  }
  return { template, cases: cases.length, user, demo, duplicates: added.items.filter((i) => i.status === 'duplicate').length }
}
