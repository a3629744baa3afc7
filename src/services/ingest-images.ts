/**
 * The one ingest path (uploads, index jobs, the demo pool):
 * hash → dedupe → decode + preprocess (per item) → encode (batched) → ONE SQLite transaction
 * for rows, embeddings and thumbnails → HNSW. A result is only returned after the commit.
 */
import { randomUUID } from 'node:crypto'
import type { EmbeddedImage } from '../ml/types.js'
import { idProblem } from '../storage/index.js'
import type { VectorRow } from '../index/index.js'
import type { IngestItem, IngestResult } from './types.js'
import { codeOf, isPlainObject, sha256, type Core } from './core.js'

/** An id made from the content hash: the same file gets the same id. */
export function contentId (sha: string): string {
  return sha.slice(0, 24)
}

/**
 * Stores the images that are new; per-item problems fail that item only.
 * - the same content as a stored image → `duplicate` with the stored id
 * - the same content twice in the batch → the second is a `duplicate` of the first
 * - an invalid id, or an id repeated in the batch → `failed` (BAD_REQUEST)
 * - an id already used by other content → `failed` (CONFLICT)
 * - undecodable / too large → `failed` (UNSUPPORTED_MEDIA_TYPE / PAYLOAD_TOO_LARGE)
 * `onCommit` runs inside the storing transaction (index jobs mark their items there); `beforeCommit`
 * is awaited after encoding, just before it (index jobs keep their pipelined batches' commits in order).
 * `background` decodes and encodes in the lower-priority child process (index jobs; see ml/background-encoder.ts).
 */
export async function ingestImages (core: Core, items: IngestItem[], opts: { onCommit?: (results: IngestResult[]) => void, beforeCommit?: () => Promise<void>, background?: boolean } = {}): Promise<IngestResult[]> {
  const { store, encoder } = core
  const results = new Array<IngestResult | undefined>(items.length)
  const shas: string[] = []
  const dupOf = new Map<number, number>()
  const firstBySha = new Map<string, number>()
  const firstById = new Map<string, number>()
  const candidates: number[] = []
  const fail = (i: number, code: string, error: string): void => { results[i] = { id: items[i]?.id ?? '', status: 'failed', code, error } }

  items.forEach((it, i) => {
    const bytes = it.bytes
    shas[i] = Buffer.isBuffer(bytes) ? sha256(bytes) : ''
    if (!Buffer.isBuffer(bytes) || bytes.length === 0) return fail(i, 'BAD_REQUEST', `items[${i}] is empty`)
    if (it.id !== undefined) {
      const problem = idProblem(it.id)
      if (problem !== undefined) return fail(i, 'BAD_REQUEST', `items[${i}].id ${problem}`)
      const first = firstById.get(it.id)
      if (first !== undefined) return fail(i, 'BAD_REQUEST', `items[${i}].id "${it.id}" repeats items[${first}].id in the same request`)
      firstById.set(it.id, i)
    }
    if (it.metadata !== undefined && !isPlainObject(it.metadata)) return fail(i, 'BAD_REQUEST', `items[${i}].metadata must be an object`)
    const sha = shas[i]!
    const stored = store.images.idBySha(sha)
    if (stored !== undefined) { results[i] = { id: stored, status: 'duplicate' }; return }
    const first = firstBySha.get(sha)
    if (first !== undefined) { dupOf.set(i, first); return }
    if (it.id !== undefined && store.images.ref(it.id) !== undefined) {
      return fail(i, 'CONFLICT', `id "${it.id}" is already used by another image; delete it first or choose another id`)
    }
    firstBySha.set(sha, i)
    candidates.push(i)
  })

  const embedded = candidates.length === 0 ? [] : await encoder.embedForIngest(candidates.map((i) => items[i]!.bytes), { background: opts.background === true })
  const ok: Array<{ i: number, p: EmbeddedImage }> = []
  embedded.forEach((p, c) => {
    const i = candidates[c]!
    if (p instanceof Error) fail(i, codeOf(p, 'UNSUPPORTED_MEDIA_TYPE'), p.message)
    else ok.push({ i, p })
  })
  await opts.beforeCommit?.()

  const rows: VectorRow[] = []
  store.transaction(() => {
    ok.forEach(({ i, p }) => {
      const it = items[i]!
      const sha = shas[i]!
      // another request may have stored the same content or id while this one was encoding
      const stored = store.images.idBySha(sha)
      if (stored !== undefined) { results[i] = { id: stored, status: 'duplicate' }; return }
      if (it.id !== undefined && store.images.ref(it.id) !== undefined) {
        return fail(i, 'CONFLICT', `id "${it.id}" is already used by another image; delete it first or choose another id`)
      }
      let id = it.id ?? contentId(sha)
      if (it.id === undefined && store.images.ref(id) !== undefined) id = randomUUID()
      const vector = p.embedding
      const ref = store.images.insert({ id, sha256: sha, width: p.width, height: p.height, metadata: it.metadata ?? {}, embedding: vector, thumbnail: p.thumbnail })
      rows.push({ ...ref, vector })
      results[i] = { id, status: 'indexed' }
    })
    for (const [i, j] of dupOf) {
      const first = results[j]!
      results[i] = first.status === 'failed' ? { ...first, id: items[i]!.id ?? '' } : { id: first.id, status: 'duplicate' }
    }
    opts.onCommit?.(results as IngestResult[])
  })
  // committed: now searchable once the index has them (a failure here is logged and replayed at the next start)
  if (rows.length > 0) await core.images.append(rows).catch(() => {})
  return results as IngestResult[]
}
