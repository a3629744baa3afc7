/**
 * The one ingest path (uploads, index jobs, the demo pool):
 * hash → dedupe → decode + preprocess (per item) → encode (batched) → ONE backend write for rows,
 * embeddings, thumbnails and the job's progress. A result is only returned after that write.
 */
import { contentId } from '../core/content-id.js'
import type { JobItemOutcome, NewImage } from '../backends/ports.js'
import type { IngestJobProgress } from '../jobs/index.js'
import type { EmbeddedImage } from '../ml/types.js'
import { idProblem } from '../core/ids.js'
import type { IngestItem, IngestResult } from '../core/types.js'
import { codeOf, isPlainObject, sha256, type Core } from './core.js'
import { makePreview } from '../ml/index.js'
import { readSource, realRoots } from './reembed-source.js'

export { contentId }

export interface IngestOptions {
  /** the index job these items belong to: its progress commits in the same write as the images */
  progress?: IngestJobProgress
  /** awaited after encoding, just before the write (index jobs keep their pipelined batches' commits in order) */
  beforeCommit?: () => Promise<void>
  /** decode and encode in the lower-priority child process (index jobs; see ml/background-encoder.ts) */
  background?: boolean
}

/**
 * Stores the images that are new; per-item problems fail that item only.
 * - the same content as a stored image → `duplicate` with the stored id
 * - the same content twice in the batch → the second is a `duplicate` of the first
 * - an invalid id, or an id repeated in the batch → `failed` (BAD_REQUEST)
 * - an id already used by other content → `failed` (CONFLICT)
 * - undecodable / too large → `failed` (UNSUPPORTED_MEDIA_TYPE / PAYLOAD_TOO_LARGE)
 */
export async function ingestImages (core: Core, items: IngestItem[], opts: IngestOptions = {}): Promise<IngestResult[]> {
  const { backend, encoder } = core
  const results = new Array<IngestResult | undefined>(items.length)
  const shas: string[] = []
  const dupOf = new Map<number, number>()
  const firstBySha = new Map<string, number>()
  const firstById = new Map<string, number>()
  const valid: number[] = []
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
    if (it.source !== undefined && typeof it.source !== 'string') return fail(i, 'BAD_REQUEST', `items[${i}].source must be a string`)
    valid.push(i)
  })

  // what is stored already: checked before encoding, so known content costs no model time
  const [storedBySha, usedIds] = valid.length === 0
    ? [new Map<string, string>(), new Set<string>()]
    : await Promise.all([
      backend.images.idsBySha([...new Set(valid.map((i) => shas[i]!))]),
      backend.images.existingIds(valid.flatMap((i) => items[i]!.id === undefined ? [] : [items[i]!.id!]))
    ])
  const candidates: number[] = []
  for (const i of valid) {
    const it = items[i]!
    const sha = shas[i]!
    const stored = storedBySha.get(sha)
    if (stored !== undefined) { results[i] = { id: stored, status: 'duplicate' }; continue }
    const first = firstBySha.get(sha)
    if (first !== undefined) { dupOf.set(i, first); continue }
    if (it.id !== undefined && usedIds.has(it.id)) {
      fail(i, 'CONFLICT', `id "${it.id}" is already used by another image; delete it first or choose another id`)
      continue
    }
    firstBySha.set(sha, i)
    candidates.push(i)
  }

  // during a model switch (and while the previous model is on standby) every image is embedded by both models
  const standby = core.standbyEncoder
  const how = { background: opts.background === true }
  // the preview comes from the decode that makes the model input: a second decode of a 24 MP photo cost more than the first
  const preview = keptFor(core)?.preview
  const candidateBytes = candidates.map((i) => items[i]!.bytes)
  const [embedded, alts] = candidates.length === 0
    ? [[], undefined]
    : await Promise.all([encoder.embedForIngest(candidateBytes, preview === undefined ? how : { ...how, preview }), standby?.embedForIngest(candidateBytes, how)])
  const ok: Array<{ i: number, p: EmbeddedImage, alt?: Float32Array }> = []
  embedded.forEach((p, c) => {
    const i = candidates[c]!
    const alt = alts?.[c]
    if (p instanceof Error) fail(i, codeOf(p, 'UNSUPPORTED_MEDIA_TYPE'), p.message)
    else ok.push({ i, p, ...(alt === undefined || alt instanceof Error ? {} : { alt: alt.embedding }) })
  })
  const kept = await Promise.all(ok.map(async ({ i, p }) => await keepForReembedding(core, items[i]!, p)))
  await opts.beforeCommit?.()

  const rows: NewImage[] = ok.map(({ i, p, alt }, r) => {
    const it = items[i]!
    const row: NewImage = { sha256: shas[i]!, width: p.width, height: p.height, metadata: it.metadata ?? {}, embedding: p.embedding, thumbnail: p.thumbnail, modelId: encoder.config.modelId, ...kept[r] }
    if (it.id !== undefined) row.id = it.id
    if (it.source !== undefined) row.source = it.source
    if (alt !== undefined && standby !== undefined) row.alt = { modelId: standby.config.modelId, embedding: alt }
    return row
  })
  const rowOf = new Map(ok.map(({ i }, r) => [i, r]))
  const progress = opts.progress === undefined ? undefined : { jobId: opts.progress.jobId, outcomes: [...opts.progress.known, ...jobOutcomes(opts.progress, results, rowOf, dupOf)] }
  // the backend checks content and ids again: another request may have stored them while this one was encoding
  const writes = rows.length === 0 && progress === undefined ? [] : await backend.images.add(rows, progress)
  ok.forEach(({ i }, r) => {
    const w = writes[r]
    if (w === undefined) fail(i, 'INTERNAL_ERROR', 'not stored')
    else if (w.status === 'failed') fail(i, w.code, w.error)
    else results[i] = { id: w.id, status: w.status }
  })
  for (const [i, j] of dupOf) {
    const first = results[j]!
    results[i] = first.status === 'failed' ? { ...first, id: items[i]!.id ?? '' } : { id: first.id, status: 'duplicate' }
  }
  return results as IngestResult[]
}

/** what ingest keeps for a later model switch: only a backend with model slots stores previews and originals */
function keptFor (core: Core): Core['keep'] {
  return core.backend.models === undefined ? undefined : core.keep
}

/**
 * What a later model switch will need from this image (README "Changing the model"): a preview of
 * PREVIEW_SIZE, and the bytes themselves under KEEP_ORIGINALS (for "uploads": only when no source
 * file under IMPORT_DIR / DEMO_POOL holds them).
 */
async function keepForReembedding (core: Core, item: IngestItem, embedded: EmbeddedImage): Promise<Pick<NewImage, 'preview' | 'original'>> {
  const keep = keptFor(core)
  if (keep === undefined) return {}
  const out: Pick<NewImage, 'preview' | 'original'> = {}
  try {
    // an encoder that does not make previews (a test double) leaves it to a decode here
    const preview = embedded.preview ?? await makePreview(item.bytes, keep.preview)
    if (preview !== undefined) out.preview = preview
  } catch { /* the encoder decoded it, so this is rare: the image is stored without a preview */ }
  if (keep.originals === 'all') out.original = item.bytes
  else if (keep.originals === 'uploads') {
    const roots = await realRoots(keep.sourceRoots)
    if ((await readSource(roots, item.source ?? null, sha256(item.bytes))) === undefined) out.original = item.bytes
  }
  return out
}

/**
 * Each item's job outcome: a stored row is referenced (the write decides; an item repeating another
 * item's bytes is a duplicate of whatever id that row gets), everything else is known now.
 */
function jobOutcomes (progress: IngestJobProgress, results: Array<IngestResult | undefined>, rowOf: Map<number, number>, dupOf: Map<number, number>): JobItemOutcome[] {
  return progress.items.map(({ seq, item }, i): JobItemOutcome => {
    const own = rowOf.get(i)
    if (own !== undefined) return { seq, item, row: own }
    const first = dupOf.get(i)
    const firstRow = first === undefined ? undefined : rowOf.get(first)
    if (firstRow !== undefined) return { seq, item, row: firstRow, duplicate: true }
    const r = results[first ?? i]
    if (r === undefined) return { seq, item, status: 'failed', error: 'not processed' }
    if (r.status === 'failed') return { seq, item, status: 'failed', error: r.error ?? 'failed' }
    // content stored before this batch: the result names the stored id
    return r.status === 'duplicate' ? { seq, item, status: 'duplicate', id: r.id } : { seq, item, status: 'indexed' }
  })
}
