/**
 * The query as the page holds it, and its round trip through the URL.
 * URL form: `?q=t:cat%20face&q=i@-0.5:<imageId>&q=v:0.1,0.2&mode=images&min=0.3&k=24`
 * — one `q` per term, in order: kind (t text, i imageId, v vector), an optional
 * `@weight`, then the value. Uploaded images cannot travel in a URL.
 * The GET API's own form is read too, so its links open here: `?q=cat%20face&k=5&minScore=0.3`;
 * `filter` holds the metadata filter as JSON text in both forms.
 * (a `q` without a kind prefix is a text term).
 */
import { MAX_K } from '../../src/core/limits.js'

export type Term =
  | { kind: 'text', text: string, weight: number }
  | { kind: 'imageId', imageId: string, weight: number, label?: string }
  | { kind: 'upload', blob: Blob, name: string, dataUrl: string, weight: number }
  | { kind: 'vector', vector: number[], weight: number }

export type Mode = 'images' | 'texts'

export interface QueryState {
  terms: Term[]
  mode: Mode
  /** 0 means no threshold */
  minScore: number
  k: number
  /** the metadata filter as the person typed it (JSON); '' for none */
  filter: string
}

export const PAGE_SIZE = 24
/** the API's largest k (one definition, shared with the server) */
export { MAX_K }
export const MIN_WEIGHT = -2
export const MAX_WEIGHT = 2

export function defaultState (): QueryState {
  return { terms: [], mode: 'images', minScore: 0, k: PAGE_SIZE, filter: '' }
}

export function clampWeight (w: number): number {
  if (!Number.isFinite(w)) return 1
  return Math.round(Math.min(MAX_WEIGHT, Math.max(MIN_WEIGHT, w)) * 100) / 100
}

/** A short human label for a term, used on chips and in explanations. */
export function termLabel (t: Term): string {
  switch (t.kind) {
    case 'text': return t.text
    case 'imageId': return t.label ?? `image ${t.imageId.slice(0, 8)}`
    case 'upload': return t.name
    case 'vector': return `vector (${t.vector.length}-d)`
  }
}

function encodeTerm (t: Term): string | null {
  const w = t.weight === 1 ? '' : `@${t.weight}`
  switch (t.kind) {
    case 'text': return `t${w}:${t.text}`
    case 'imageId': return `i${w}:${t.imageId}`
    case 'vector': return `v${w}:${t.vector.join(',')}`
    case 'upload': return null
  }
}

const TERM_RE = /^([tiv])(?:@(-?\d+(?:\.\d+)?))?:([\s\S]*)$/

function decodeTerm (s: string): Term | null {
  const m = TERM_RE.exec(s)
  // the GET API's plain `q=pizza`
  if (m === null) return s.trim() === '' ? null : { kind: 'text', text: s, weight: 1 }
  const [, kind, w, value = ''] = m
  const weight = w === undefined ? 1 : clampWeight(Number(w))
  if (kind === 't') return value.trim() === '' ? null : { kind: 'text', text: value, weight }
  if (kind === 'i') return value === '' ? null : { kind: 'imageId', imageId: value, weight }
  const vector = value.split(',').map(Number)
  return vector.length === 0 || vector.some((x) => !Number.isFinite(x)) ? null : { kind: 'vector', vector, weight }
}

/** Encode the shareable part of the state; returns also how many terms could not be encoded. */
export function stateToParams (s: QueryState): { params: URLSearchParams, omitted: number } {
  const params = new URLSearchParams()
  let omitted = 0
  for (const t of s.terms) {
    const enc = encodeTerm(t)
    if (enc === null) omitted++
    else params.append('q', enc)
  }
  if (s.mode !== 'images') params.set('mode', s.mode)
  if (s.minScore > 0) params.set('min', String(s.minScore))
  if (s.k !== PAGE_SIZE) params.set('k', String(s.k))
  if (s.filter.trim() !== '') params.set('filter', s.filter.trim())
  return { params, omitted }
}

export function paramsToState (params: URLSearchParams): QueryState {
  const s = defaultState()
  for (const q of params.getAll('q')) {
    const t = decodeTerm(q)
    if (t !== null) s.terms.push(t)
  }
  if (params.get('mode') === 'texts') s.mode = 'texts'
  const min = Number(params.get('min') ?? params.get('minScore'))
  if (Number.isFinite(min) && min > 0 && min <= 1) s.minScore = min
  const k = Number(params.get('k'))
  if (Number.isInteger(k) && k > 0) s.k = Math.min(k, MAX_K)
  s.filter = params.get('filter')?.trim() ?? ''
  return s
}

/** The filter text as the request's object; a string saying what is wrong when it is not a JSON object. */
export function parseFilterText (text: string): Record<string, unknown> | undefined | string {
  if (text.trim() === '') return undefined
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    return 'The filter is not valid JSON: write it like {"album": "holiday"}.'
  }
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : 'The filter must be a JSON object, like {"album": "holiday"}.'
}
