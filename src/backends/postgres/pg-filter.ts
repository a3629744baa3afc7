/**
 * The metadata filter (src/core/metadata-filter.ts) as a parameterised SQL condition over one vector
 * table. Values travel only as bind parameters; keys too. Each condition can use an index:
 * - $eq / $in / $ne / $nin: `metadata @> $n::jsonb`, the GIN index (jsonb_path_ops); jsonb
 *   containment compares like the filter (same JSON type, numbers by value, an array never equals
 *   a scalar at a key);
 * - $gt… / $exists: `id IN (SELECT id FROM <table>_metadata_keys WHERE key = … AND num > …)`, the
 *   side table that migration 0006's triggers keep, with B-trees on (key, num) and (key, instant).
 */
import type { FilterNode, FilterScalar } from '../../core/metadata-filter.js'
import type { VectorTable } from './migrate.js'

/** Appends `v` to `values` and returns its placeholder. */
export type Bind = (v: unknown) => string

export function binder (values: unknown[]): Bind {
  return (v) => { values.push(v); return `$${values.length}` }
}

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
  const byId = (where: string): string => exact && underOr ? `id = ANY(ARRAY(SELECT id FROM ${keys} WHERE ${where}))` : `id IN (SELECT id FROM ${keys} WHERE ${where})`
  switch (node.op) {
    case 'and': return `(${node.of.map((n) => filterCondition(table, n, bind, exact, underOr)).join(' AND ')})`
    case 'or': return `(${node.of.map((n) => filterCondition(table, n, bind, exact, true)).join(' OR ')})`
    case 'eq': return contains(bind, node.key, node.value)
    case 'ne': return `NOT ${contains(bind, node.key, node.value)}`
    case 'in': return `(${node.values.map((v) => contains(bind, node.key, v)).join(' OR ')})`
    case 'nin': return `NOT (${node.values.map((v) => contains(bind, node.key, v)).join(' OR ')})`
    case 'exists': return node.exists ? byId(`key = ${bind(node.key)}`) : `NOT id IN (SELECT id FROM ${keys} WHERE key = ${bind(node.key)})`
    default: {
      const op = { gt: '>', gte: '>=', lt: '<', lte: '<=' }[node.op]
      const column = node.kind === 'number' ? `num ${op} ${bind(String(node.value))}::numeric` : `instant ${op} ${bind(node.value)}::float8`
      return byId(`key = ${bind(node.key)} AND ${column}`)
    }
  }
}
