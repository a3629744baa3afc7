/** The text pool of the PostgreSQL backend. */
import { ConflictError } from '../../core/errors.js'
import type { NewText, TextCollection, WriteOutcome } from '../ports.js'
import { insertRows, PgCollection, storedBySha, storedIds } from './pg-collection.js'
import { RaceLost, withRetriedTransaction } from './pg-pool.js'
import { toVectorLiteral } from './pg-vector-search.js'
import { candidateIds, planWrites } from './plan-writes.js'

const COLUMNS = ['id', 'text', 'sha256', 'metadata', 'embedding']

export class PgTexts extends PgCollection implements TextCollection {
  /** One transaction; an id used by another text throws ConflictError and nothing is stored. */
  async add (rows: NewText[]): Promise<WriteOutcome[]> {
    return await withRetriedTransaction(this.pool, async (c) => {
      const bySha = await storedBySha(c, 'texts', rows.map((r) => r.sha256))
      const taken = await storedIds(c, 'texts', candidateIds(rows))
      const plan = planWrites(rows, bySha, taken, 'text')
      const conflict = plan.outcomes.find((o) => o.status === 'failed')
      if (conflict !== undefined && conflict.status === 'failed') throw new ConflictError(conflict.error)
      const values = plan.inserts.map(({ row, id }) => {
        const r = rows[row]!
        return [id, r.text, r.sha256, JSON.stringify(r.metadata), toVectorLiteral(r.embedding)]
      })
      if (await insertRows(c, 'texts', COLUMNS, values) < values.length) throw new RaceLost()
      return plan.outcomes
    })
  }
}
