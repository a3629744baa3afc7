/**
 * The metadata filter (src/core/metadata-filter.ts) as a parameterised SQL condition over one vector
 * table. Values travel only as bind parameters; keys too. Each condition can use an index:
 * - $eq / $in / $ne / $nin: `metadata @> $n::jsonb`, the GIN index (jsonb_path_ops); jsonb
 *   containment compares like the filter (same JSON type, numbers by value, an array never equals
 *   a scalar at a key);
 * - $gt… / $exists: `id IN (SELECT id FROM <table>_metadata_keys WHERE key = … AND num > …)`, the
 *   side table that migration 0006's triggers keep, with B-trees on (key, num) and (key, instant);
 *   the numbers of an $in too (`num = ANY(…)`: the side table holds a value as `num` only when it is
 *   a JSON number, so this matches as containment does);
 *   The comparisons of one $and on one key are one range (`num >= … AND num < …`): one B-tree range
 *   scan that reads the matches, where one semi-join per bound read each half-line (most of the
 *   table for a 1% range: 200 ms at 20k rows).
 */
import pg from 'pg'
import { groupRanges, rangeOf, type KeyRange } from '../../core/filter-ranges.js'
import type { FilterNode, FilterScalar } from '../../core/metadata-filter.js'
import type { VectorTable } from './migrate.js'

/** Turns a value into SQL: a placeholder (binder) or a quoted literal (literalBinder). */
export type Bind = (v: unknown) => string

/** Appends `v` to `values` and returns its placeholder. */
export function binder (values: unknown[]): Bind {
  return (v) => { values.push(v); return `$${values.length}` }
}

/**
 * Each value as a quoted literal (node-postgres' escapeLiteral), for a message of several
 * statements (`SET LOCAL …; SELECT …`), which the simple query protocol sends in one round trip
 * but which cannot carry bind parameters. Strings, finite numbers and arrays of strings only.
 */
export function literalBinder (): Bind {
  return (v) => {
    if (typeof v === 'string') return pg.escapeLiteral(v)
    if (typeof v === 'number' && Number.isFinite(v)) return String(v)
    if (Array.isArray(v)) return `ARRAY[${v.map((x) => pg.escapeLiteral(String(x))).join(', ')}]::text[]`
    throw new TypeError(`no SQL literal for ${typeof v}`)
  }
}

/** an $in with more numbers than this reads them from the side table in one B-tree scan (a few GIN scans cost less) */
const IN_CONTAINMENTS_MAX = 16

function contains (bind: Bind, key: string, value: FilterScalar): string {
  return `metadata @> ${bind(JSON.stringify({ [key]: value }))}::jsonb`
}

/**
 * The SQL condition for `node` on `table`'s rows. `exact`: for the count and the exact path, where
 * an `$or` must become a BitmapOr of index scans: a side-table condition under an `$or` is then
 * `id = ANY(ARRAY(…))`, which the primary key's B-tree can answer (a semi-join under OR cannot), and
 * which is small there, because the exact path runs only when the whole filter matches few rows…
 * unless that branch alone matches many, which the statement timeout bounds.
 */
export function filterCondition (table: VectorTable, node: FilterNode, bind: Bind, exact = false, underOr = false): string {
  const keys = `${table}_metadata_keys`
  const byIdUnderOr = (where: string): string => `id = ANY(ARRAY(SELECT id FROM ${keys} WHERE ${where}))`
  // the walk: a correlated EXISTS that OFFSET 0 keeps from becoming a join, so each candidate the
  // HNSW walk brings is looked up by id; as a semi-join the planner read the whole range (2,000
  // rows at 10%) and sorted it exactly, under an estimate of 96 matches
  const byId = (where: string): string => !exact
    ? `EXISTS (SELECT 1 FROM ${keys} WHERE ${keys}.id = ${table}.id AND ${where} OFFSET 0)`
    : underOr ? byIdUnderOr(where) : `id IN (SELECT id FROM ${keys} WHERE ${where})`
  switch (node.op) {
    case 'and': {
      const { ranges, rest } = groupRanges(node.of)
      return `(${[...ranges.map((r) => rangeCondition(r, bind, byId)), ...rest.map((n) => filterCondition(table, n, bind, exact, underOr))].join(' AND ')})`
    }
    case 'or': return `(${node.of.map((n) => filterCondition(table, n, bind, exact, true)).join(' OR ')})`
    case 'eq': return contains(bind, node.key, node.value)
    case 'ne': return `NOT ${contains(bind, node.key, node.value)}`
    case 'in': {
      // numbers by the side table's B-tree, all in one index scan (num = ANY): as GIN containments,
      // 100 values were 100 index scans and 100 containment checks per row at the heap's recheck
      const numbers = node.values.filter((v) => typeof v === 'number')
      if (numbers.length <= IN_CONTAINMENTS_MAX) return `(${node.values.map((v) => contains(bind, node.key, v)).join(' OR ')})`
      const others = node.values.filter((v) => typeof v !== 'number')
      const nums = (exact && others.length > 0 ? byIdUnderOr : byId)(`key = ${bind(node.key)} AND num = ANY(${bind(numbers.map(String))}::numeric[])`)
      return `(${[nums, ...others.map((v) => contains(bind, node.key, v))].join(' OR ')})`
    }
    case 'nin': return `NOT (${node.values.map((v) => contains(bind, node.key, v)).join(' OR ')})`
    case 'exists': return node.exists ? byId(`key = ${bind(node.key)}`) : `NOT ${exact ? `id IN (SELECT id FROM ${keys} WHERE key = ${bind(node.key)})` : byId(`key = ${bind(node.key)}`)}`
    default: return rangeCondition(rangeOf(node), bind, byId)
  }
}

function rangeCondition (r: KeyRange, bind: Bind, byId: (where: string) => string): string {
  const column = r.kind === 'number' ? 'num' : 'instant'
  const value = (v: number): string => r.kind === 'number' ? `${bind(String(v))}::numeric` : `${bind(v)}::float8`
  const bounds = [`key = ${bind(r.key)}`]
  if (r.lower !== undefined) bounds.push(`${column} ${r.lower.inclusive ? '>=' : '>'} ${value(r.lower.value)}`)
  if (r.upper !== undefined) bounds.push(`${column} ${r.upper.inclusive ? '<=' : '<'} ${value(r.upper.value)}`)
  return byId(bounds.join(' AND '))
}
