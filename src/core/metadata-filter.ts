/**
 * The metadata filter language, shared by both backends (the Chroma / Pinecone / Mongo convention):
 *
 * - `{"album": "x"}` exact match; several keys must all match;
 * - `{"n": {"$eq" | "$ne": v}}`, `{"n": {"$in" | "$nin": [v, …]}}` with v a string, number or boolean;
 * - `{"n": {"$gt" | "$gte" | "$lt" | "$lte": v}}` with v a number or an ISO-8601 date string;
 * - `{"n": {"$exists": true | false}}`;
 * - `{"$and": [filter, …]}`, `{"$or": [filter, …]}`, nested at most MAX_FILTER_DEPTH deep.
 *
 * Semantics, exactly as `matchesFilter` evaluates them (the PostgreSQL compiler and the embedded
 * index must agree with it; the property tests hold them to it):
 * - `$eq` / exact match: the stored value has the operand's JSON type and equals it (numbers by value);
 * - `$ne` / `$nin`: the negation of `$eq` / `$in`, so a row without the key matches (as in Mongo);
 * - `$gt`… with a number: the stored value is a number and compares so; with an ISO-8601 string: the
 *   stored value is a string that is an ISO-8601 instant too, and the two compare as UTC instants
 *   (a date or time without an offset is UTC). Any other stored value does not match;
 * - `$exists`: whether the key is present (any value, null included).
 *
 * `parseFilter` turns the JSON into a normalised tree, or throws BadRequestError naming the bad part
 * in words. No I/O: the backends and the tests import it.
 */
import { BadRequestError } from './errors.js'
import { parseInstant } from './iso-instant.js'

export type FilterScalar = string | number | boolean

/** A filter as clients send it (JSON); `parseFilter` checks it. */
export type MetadataFilter = Record<string, unknown>

export type CompareOp = 'gt' | 'gte' | 'lt' | 'lte'

/** The normalised filter: what backends compile or evaluate. */
export type FilterNode =
  | { op: 'and' | 'or', of: FilterNode[] }
  | { op: 'eq' | 'ne', key: string, value: FilterScalar }
  | { op: 'in' | 'nin', key: string, values: FilterScalar[] }
  /** `kind` number: `value` is the number; instant: `value` is milliseconds since 1970 UTC */
  | { op: CompareOp, key: string, kind: 'number' | 'instant', value: number }
  | { op: 'exists', key: string, exists: boolean }

/** most levels of $and / $or nesting */
export const MAX_FILTER_DEPTH = 4
/** most conditions (leaves) in one filter */
export const MAX_FILTER_CONDITIONS = 64
/** most values in one $in / $nin */
export const MAX_FILTER_VALUES = 256
/** longest metadata key, characters */
export const MAX_FILTER_KEY_CHARS = 128

const FIELD_OPS = new Set(['$eq', '$ne', '$in', '$nin', '$gt', '$gte', '$lt', '$lte', '$exists'])

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isScalar (v: unknown): v is FilterScalar {
  return typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))
}

function describe (v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v)
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`
}

function bad (message: string): never {
  throw new BadRequestError(message)
}

/**
 * Checks and normalises a filter; undefined when it selects everything (absent or `{}`).
 * Throws BadRequestError naming the bad part, e.g. `filter.year.$gt must be a number or an ISO-8601 date string, got a boolean`.
 */
export function parseFilter (raw: unknown, at = 'filter'): FilterNode | undefined {
  if (raw === undefined) return undefined
  const state = { conditions: 0 }
  const node = parseObject(raw, at, 1, state)
  return node.op === 'and' && node.of.length === 0 ? undefined : node
}

function parseObject (raw: unknown, at: string, depth: number, state: { conditions: number }): FilterNode {
  if (!isObject(raw)) bad(`${at} must be an object of metadata key → value or condition, got ${describe(raw)}`)
  const parts: FilterNode[] = []
  for (const [key, value] of Object.entries(raw)) {
    const here = `${at}.${key}`
    if (key === '$and' || key === '$or') {
      if (depth >= MAX_FILTER_DEPTH) bad(`${here}: $and and $or nest at most ${MAX_FILTER_DEPTH} levels deep`)
      if (!Array.isArray(value) || value.length === 0) bad(`${here} must be a non-empty array of filters, got ${Array.isArray(value) ? 'an empty array' : describe(value)}`)
      const of = value.map((v, i) => parseObject(v, `${here}[${i}]`, depth + 1, state))
      parts.push({ op: key === '$and' ? 'and' : 'or', of })
    } else if (key.startsWith('$')) {
      bad(`${here}: unknown operator ${key} at the top of a filter; only $and and $or go there, field operators go inside a key ({"year": {"$gt": 2020}})`)
    } else {
      if (key.length === 0) bad(`${at} has an empty key`)
      if (key.length > MAX_FILTER_KEY_CHARS) bad(`${at} has a key longer than ${MAX_FILTER_KEY_CHARS} characters`)
      parts.push(...parseField(key, value, here, state))
    }
  }
  return parts.length === 1 ? parts[0]! : { op: 'and', of: parts }
}

function count (state: { conditions: number }): void {
  if (++state.conditions > MAX_FILTER_CONDITIONS) bad(`filter has more than ${MAX_FILTER_CONDITIONS} conditions`)
}

function parseField (key: string, value: unknown, at: string, state: { conditions: number }): FilterNode[] {
  if (isScalar(value)) { count(state); return [{ op: 'eq', key, value }] }
  if (!isObject(value)) bad(`${at} must be a string, a finite number, a boolean or an object of operators ($eq, $ne, $in, $nin, $gt, $gte, $lt, $lte, $exists), got ${describe(value)}`)
  const ops = Object.entries(value)
  if (ops.length === 0) bad(`${at} is an empty object: give a value or an operator such as {"$eq": …}`)
  return ops.map(([op, operand]): FilterNode => {
    const here = `${at}.${op}`
    if (!FIELD_OPS.has(op)) bad(`${here}: unknown operator "${op}"; use one of ${[...FIELD_OPS].join(', ')}`)
    count(state)
    switch (op) {
      case '$eq': case '$ne':
        if (!isScalar(operand)) bad(`${here} must be a string, a finite number or a boolean, got ${describe(operand)}`)
        return { op: op === '$eq' ? 'eq' : 'ne', key, value: operand }
      case '$in': case '$nin': {
        if (!Array.isArray(operand) || operand.length === 0) bad(`${here} must be a non-empty array of strings, numbers or booleans, got ${Array.isArray(operand) ? 'an empty array' : describe(operand)}`)
        if (operand.length > MAX_FILTER_VALUES) bad(`${here} has ${operand.length} values; at most ${MAX_FILTER_VALUES}`)
        operand.forEach((v, i) => { if (!isScalar(v)) bad(`${here}[${i}] must be a string, a finite number or a boolean, got ${describe(v)}`) })
        return { op: op === '$in' ? 'in' : 'nin', key, values: operand as FilterScalar[] }
      }
      case '$exists':
        if (typeof operand !== 'boolean') bad(`${here} must be true or false, got ${describe(operand)}`)
        return { op: 'exists', key, exists: operand }
      default: {
        const cmp = op.slice(1) as CompareOp
        if (typeof operand === 'number' && Number.isFinite(operand)) return { op: cmp, key, kind: 'number', value: operand }
        if (typeof operand === 'string') {
          const ms = parseInstant(operand)
          if (ms === undefined) bad(`${here} must be a number or an ISO-8601 date string (2024-05-01, 2024-05-01T12:00:00Z, 2024-05-01T14:00:00+02:00), got "${operand.slice(0, 64)}"`)
          return { op: cmp, key, kind: 'instant', value: ms }
        }
        return bad(`${here} must be a number or an ISO-8601 date string, got ${describe(operand)}`)
      }
    }
  })
}

/** whether stored `v` equals filter scalar `x` (same JSON type, numbers by value) */
export function scalarEquals (v: unknown, x: FilterScalar): boolean {
  return typeof v === typeof x && v === x
}

/** whether stored `v` compares to the node's operand as `op` says (type-matched; dates as instants) */
export function compares (v: unknown, node: { op: CompareOp, kind: 'number' | 'instant', value: number }): boolean {
  let a: number | undefined
  if (node.kind === 'number') a = typeof v === 'number' ? v : undefined
  else a = typeof v === 'string' ? parseInstant(v) : undefined
  if (a === undefined) return false
  switch (node.op) {
    case 'gt': return a > node.value
    case 'gte': return a >= node.value
    case 'lt': return a < node.value
    case 'lte': return a <= node.value
  }
}

/** The exact evaluation of a parsed filter on one row's metadata: the reference both backends answer like. */
export function matchesFilter (metadata: Record<string, unknown>, node: FilterNode): boolean {
  switch (node.op) {
    case 'and': return node.of.every((n) => matchesFilter(metadata, n))
    case 'or': return node.of.some((n) => matchesFilter(metadata, n))
    case 'exists': return Object.hasOwn(metadata, node.key) === node.exists
    case 'eq': return Object.hasOwn(metadata, node.key) && scalarEquals(metadata[node.key], node.value)
    case 'ne': return !(Object.hasOwn(metadata, node.key) && scalarEquals(metadata[node.key], node.value))
    case 'in': return Object.hasOwn(metadata, node.key) && node.values.some((x) => scalarEquals(metadata[node.key], x))
    case 'nin': return !(Object.hasOwn(metadata, node.key) && node.values.some((x) => scalarEquals(metadata[node.key], x)))
    default: return Object.hasOwn(metadata, node.key) && compares(metadata[node.key], node)
  }
}
