/**
 * Multimodal query arithmetic, as in ALIGN: every term (text, stored image, uploaded image or raw
 * vector) becomes a unit vector e_i; the query is normalize(Σ w_i · e_i). Then kNN by cosine.
 */
import { BadRequestError, NotFoundError, NotReadyError } from '../core/errors.js'
import { MAX_K, MAX_QUERY_TERMS } from '../core/limits.js'
import { cosine, l2normalize, norm } from '../core/vector-math.js'
import { parseFilter } from '../core/metadata-filter.js'
import type { QueryTerm, SearchHit, SearchRequest } from './types.js'
import { isPlainObject, type Core } from './core.js'

/** below this norm the weighted sum has no direction */
const MIN_NORM = 1e-6

type Kind = 'text' | 'imageId' | 'image' | 'vector'
const KINDS: Kind[] = ['text', 'imageId', 'image', 'vector']

/** Validates the request shape; throws BadRequestError naming the field. */
export function checkSearchRequest (req: SearchRequest, dim: number): Array<{ kind: Kind, weight: number }> {
  if (!isPlainObject(req)) throw new BadRequestError('the search request must be an object')
  if (req.target !== 'images' && req.target !== 'texts') throw new BadRequestError('target must be "images" or "texts"')
  if (!Number.isInteger(req.k) || req.k < 1 || req.k > MAX_K) throw new BadRequestError(`k must be an integer from 1 to ${MAX_K}`)
  if (req.minScore !== undefined && (typeof req.minScore !== 'number' || !Number.isFinite(req.minScore))) throw new BadRequestError('minScore must be a finite number')
  if (req.explain !== undefined && typeof req.explain !== 'boolean') throw new BadRequestError('explain must be a boolean')
  if (req.includeQueryImages !== undefined && typeof req.includeQueryImages !== 'boolean') throw new BadRequestError('includeQueryImages must be a boolean')
  parseFilter(req.filter) // throws BadRequestError naming the bad part
  if (!Array.isArray(req.query) || req.query.length === 0) throw new BadRequestError('query must be a non-empty array of terms')
  if (req.query.length > MAX_QUERY_TERMS) throw new BadRequestError(`query has ${req.query.length} terms; at most ${MAX_QUERY_TERMS}`)
  const kinds = req.query.map((t: QueryTerm, i) => {
    if (!isPlainObject(t)) throw new BadRequestError(`query[${i}] must be an object`)
    const present = KINDS.filter((k) => (t as Record<string, unknown>)[k] !== undefined)
    if (present.length !== 1) throw new BadRequestError(`query[${i}] needs exactly one of text, imageId, image, vector`)
    const kind = present[0]!
    const weight = t.weight ?? 1
    if (typeof weight !== 'number' || !Number.isFinite(weight)) throw new BadRequestError(`query[${i}].weight must be a finite number`)
    const value = (t as Record<string, unknown>)[kind]
    if (kind === 'text' && (typeof value !== 'string' || value.trim() === '')) throw new BadRequestError(`query[${i}].text must be a non-empty string`)
    if (kind === 'imageId' && typeof value !== 'string') throw new BadRequestError(`query[${i}].imageId must be a string`)
    if (kind === 'image' && (!Buffer.isBuffer(value) || value.length === 0)) throw new BadRequestError(`query[${i}].image must be non-empty image bytes`)
    if (kind === 'vector') {
      if (!Array.isArray(value) || value.length !== dim) throw new BadRequestError(`query[${i}].vector must be an array of ${dim} numbers (the model's embedding_dim)`)
      value.forEach((x: unknown, j) => {
        if (typeof x !== 'number' || !Number.isFinite(x)) throw new BadRequestError(`query[${i}].vector[${j}] must be a finite number`)
      })
    }
    return { kind, weight }
  })
  if (kinds.every((k) => k.weight <= 0)) {
    throw new BadRequestError('query: every term\'s weight is 0 or negative, so the query points away from everything it names and would rank "anti-results"; ' +
      'give at least one term a positive weight (a negative weight removes a concept from the positive terms)')
  }
  return kinds
}

/** Each term as a unit vector, in query order. Texts and images are encoded in one batch each. */
export async function termVectors (core: Core, query: QueryTerm[], kinds: Array<{ kind: Kind }>): Promise<Float32Array[]> {
  const out = new Array<Float32Array>(query.length)
  const texts: number[] = []
  const images: number[] = []
  const stored: number[] = []
  query.forEach((t, i) => {
    const kind = kinds[i]!.kind
    if (kind === 'text') texts.push(i)
    else if (kind === 'image') images.push(i)
    else if (kind === 'imageId') stored.push(i)
    else {
      const v = Float32Array.from((t as { vector: number[] }).vector)
      if (norm(v) < MIN_NORM) throw new BadRequestError(`query[${i}].vector has (almost) zero length`)
      out[i] = l2normalize(v)
    }
  })
  // stored images first: an unknown id answers 404 without spending model time
  for (const i of stored) {
    const id = (query[i] as { imageId: string }).imageId
    const v = await core.backend.images.embedding(id)
    if (v === undefined) throw new NotFoundError(`query[${i}].imageId: no image with id "${id}"`)
    if (norm(v) < MIN_NORM) throw new BadRequestError(`query[${i}].imageId: image "${id}" was left out of the active model (a model switch skipped it: no source large enough)`)
    out[i] = l2normalize(v)
  }
  const [tv, iv] = await Promise.all([
    texts.length === 0 ? [] : core.encoder.encodeTexts(texts.map((i) => (query[i] as { text: string }).text)),
    images.length === 0 ? [] : core.encoder.encodeImages(images.map((i) => (query[i] as { image: Buffer }).image))
  ])
  texts.forEach((i, k) => { out[i] = l2normalize(tv[k]!) })
  images.forEach((i, k) => { out[i] = l2normalize(iv[k]!) })
  return out
}

/** normalize(Σ w_i · e_i); throws BadRequestError when the terms cancel out */
export function combineTerms (vectors: Float32Array[], weights: number[]): Float32Array {
  const dim = vectors[0]!.length
  const sum = new Float64Array(dim)
  vectors.forEach((v, i) => {
    const w = weights[i]!
    for (let j = 0; j < dim; j++) sum[j] = sum[j]! + w * v[j]!
  })
  let n = 0
  for (let j = 0; j < dim; j++) n += sum[j]! * sum[j]!
  n = Math.sqrt(n)
  if (!(n >= MIN_NORM)) throw new BadRequestError('query: the weighted terms cancel out (their sum has no direction); change the weights')
  const out = new Float32Array(dim)
  for (let j = 0; j < dim; j++) out[j] = sum[j]! / n
  return out
}

/**
 * The images a search leaves out: those its `imageId` terms name, which would otherwise come first
 * (an image matches itself with cosine 1), unless `includeQueryImages`. Only images are left out:
 * a text that happens to share an id is another item.
 */
function queryImageIds (req: SearchRequest): string[] {
  if (req.target !== 'images' || req.includeQueryImages === true) return []
  return [...new Set(req.query.flatMap((t) => 'imageId' in t && typeof t.imageId === 'string' ? [t.imageId] : []))]
}

/** a search that straddles this many model swaps in a row gives up (each retry runs within one model) */
const MAX_SWAP_RETRIES = 3

/**
 * Runs a search request; see SearchRequest in ./types.ts. The query is encoded and searched within
 * one model: when a model swap happens in between, the search runs again with the new model.
 */
export async function search (core: Core, req: SearchRequest): Promise<SearchHit[]> {
  for (let attempt = 0; ; attempt++) {
    const generation = core.generation ?? 0
    try {
      const hits = await searchOnce(core, req)
      if ((core.generation ?? 0) === generation) return hits
    } catch (err) {
      // a swap mid-search can make the query's dimension differ from the index's: that is the swap's doing, not the request's.
      // Where another process swapped (PostgreSQL), this one may not have heard yet: it asks, and follows before retrying
      if ((core.generation ?? 0) === generation) await core.backend.models?.refresh?.().catch(() => {})
      if ((core.generation ?? 0) === generation) throw err
    }
    if (attempt >= MAX_SWAP_RETRIES) throw new NotReadyError('the model changed during this search several times; retry')
  }
}

async function searchOnce (core: Core, req: SearchRequest): Promise<SearchHit[]> {
  const kinds = checkSearchRequest(req, core.dim)
  const vectors = await termVectors(core, req.query, kinds)
  const query = combineTerms(vectors, kinds.map((k) => k.weight))
  const collection = req.target === 'images' ? core.backend.images : core.backend.texts
  const explain = req.explain === true
  const excludeIds = queryImageIds(req)
  const found = await collection.search(query, {
    k: req.k,
    ...(parseFilter(req.filter) === undefined ? {} : { filter: req.filter }),
    ...(req.minScore === undefined ? {} : { minScore: req.minScore }),
    ...(excludeIds.length === 0 ? {} : { excludeIds }),
    withEmbeddings: explain
  })
  return found.map((r) => {
    const hit: SearchHit = { id: r.id, score: r.score, metadata: r.metadata }
    if (r.source !== undefined) hit.source = r.source
    if (r.text !== undefined) hit.text = r.text
    if (explain && r.embedding !== undefined) hit.terms = vectors.map((v) => cosine(v, r.embedding!))
    return hit
  })
}
