/** The text pool of the PostgreSQL backend. */
import { ConflictError } from '../../core/errors.js'
import type { NewText, TextCollection, WriteOutcome } from '../ports.js'
import { insertRows, PgCollection, storedBySha, storedIds } from './pg-collection.js'
import { RaceLost, withRetriedTransaction } from './pg-pool.js'
import { toVectorLiteral } from './pg-vector-search.js'
import { vectorsByModel } from '../model-vectors.js'
import { readModelState, STANDBY_COLUMN } from './model-records.js'
import { candidateIds, planWrites } from './plan-writes.js'

const COLUMNS = ['id', 'text', 'sha256', 'metadata', 'embedding', 'template']

export class PgTexts extends PgCollection implements TextCollection {
  /** One transaction; an id used by another text throws ConflictError and nothing is stored. */
  async add (rows: NewText[]): Promise<WriteOutcome[]> {
    return await withRetriedTransaction(this.pool, async (c) => {
      const models = await readModelState(c, 'share')
      const bySha = await storedBySha(c, 'texts', rows.map((r) => r.sha256))
      const taken = await storedIds(c, 'texts', candidateIds(rows))
      const plan = planWrites(rows, bySha, taken, 'text')
      const conflict = plan.outcomes.find((o) => o.status === 'failed')
      if (conflict !== undefined && conflict.status === 'failed') throw new ConflictError(conflict.error)
      const values = plan.inserts.map(({ row, id }) => {
        const r = rows[row]!
        const v = vectorsByModel(r, models.active.modelId, models.standby?.modelId)
        const out: unknown[] = [id, r.text, r.sha256, JSON.stringify(r.metadata), toVectorLiteral(v.active), r.template === undefined || r.template === null ? null : JSON.stringify(r.template)]
        if (models.standby !== undefined) out.push(v.standby === undefined ? null : toVectorLiteral(v.standby))
        return out
      })
      const columns = models.standby === undefined ? COLUMNS : [...COLUMNS, STANDBY_COLUMN]
      if (await insertRows(c, 'texts', columns, values) < values.length) throw new RaceLost()
      return plan.outcomes
    })
  }
}
