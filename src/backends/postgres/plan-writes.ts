/**
 * What a batch write will do to each row, decided from one read of the stored hashes and ids, in
 * row order, exactly as the SQLite adapter decides it row by row: a stored (or earlier in the batch)
 * sha256 is a duplicate of that id; a given id already taken is a conflict; no id takes
 * contentId(sha256), or a UUID when that is taken.
 */
import { randomUUID } from 'node:crypto'
import { contentId } from '../../core/content-id.js'
import type { WriteOutcome } from '../ports.js'

export interface PlannedRow { id?: string, sha256: string }

export interface WritePlan {
  outcomes: WriteOutcome[]
  /** the rows to insert, with their final ids, in order */
  inserts: Array<{ row: number, id: string }>
}

/** the ids a batch may take, to read in the same query as the hashes */
export function candidateIds (rows: PlannedRow[]): string[] {
  return rows.map((r) => r.id ?? contentId(r.sha256))
}

export function planWrites (rows: PlannedRow[], bySha: Map<string, string>, taken: Set<string>, what: 'image' | 'text'): WritePlan {
  const seen = new Map(bySha)
  const used = new Set(taken)
  const plan: WritePlan = { outcomes: [], inserts: [] }
  rows.forEach((row, i) => {
    const stored = seen.get(row.sha256)
    if (stored !== undefined) {
      plan.outcomes.push({ status: 'duplicate', id: stored })
      return
    }
    if (row.id !== undefined && used.has(row.id)) {
      plan.outcomes.push({ status: 'failed', code: 'CONFLICT', error: `id "${row.id}" is already used by another ${what}; delete it first or choose another id` })
      return
    }
    let id = row.id ?? contentId(row.sha256)
    if (row.id === undefined && used.has(id)) id = randomUUID()
    seen.set(row.sha256, id)
    used.add(id)
    plan.inserts.push({ row: i, id })
    plan.outcomes.push({ status: 'indexed', id })
  })
  return plan
}
