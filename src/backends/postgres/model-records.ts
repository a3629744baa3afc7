/**
 * The model slots as the index record keeps them (migration 0009): the 'active' row names the model
 * whose vectors are in `embedding`, the 'standby' row the one whose vectors are in
 * `standby_embedding` (a switch building it, or the previous model kept for a swap back).
 *
 * Every write reads them FOR SHARE first, in its own transaction: a swap takes them FOR UPDATE
 * before it renames the columns, so a write sees either the slots before the swap or after it,
 * never a mix, and its vectors land in the column of the model that made them.
 */
import type pg from 'pg'
import type { StandbyRecord } from '../ports.js'
import type { IndexRecord } from './index-settings.js'
import type { VectorTable } from './migrate.js'

type Queryable = Pick<pg.ClientBase, 'query'>

/** the column of the standby model's vectors (absent while there is no standby model) */
export const STANDBY_COLUMN = 'standby_embedding'
/** the channel a swap, a switch's start and a drop are announced on, so every process follows at once */
export const MODELS_CHANNEL = 'align_search_models'

export interface ActiveSlot extends IndexRecord { modelDir?: string }
export interface StandbySlot extends IndexRecord { record: StandbyRecord }
export interface ModelState { active: ActiveSlot, standby?: StandbySlot }

interface Row { slot: string, model_id: string, dim: number, vector_type: 'vector' | 'halfvec', m: number, ef_construction: number, model_dir: string | null, standby: Omit<StandbyRecord, 'modelId' | 'dim' | 'modelDir'> | null }

/**
 * The active and standby rows; `lock` takes them FOR SHARE (a write) or FOR UPDATE (a change of
 * slots) in the caller's transaction.
 */
export async function readModelState (db: Queryable, lock?: 'share' | 'update'): Promise<ModelState> {
  const r = await db.query<Row>(
    `SELECT slot, model_id, dim, vector_type, m, ef_construction, model_dir, standby FROM index_settings WHERE slot IN ('active', 'standby')
     ORDER BY slot${lock === undefined ? '' : lock === 'share' ? ' FOR SHARE' : ' FOR UPDATE'}`)
  const state: Partial<ModelState> = {}
  for (const row of r.rows) {
    const rec: IndexRecord = { modelId: row.model_id, dim: row.dim, vectorType: row.vector_type, M: row.m, efConstruction: row.ef_construction }
    if (row.slot === 'active') state.active = { ...rec, ...(row.model_dir === null ? {} : { modelDir: row.model_dir }) }
    else {
      state.standby = {
        ...rec,
        record: { modelId: row.model_id, dim: row.dim, ...(row.model_dir === null ? {} : { modelDir: row.model_dir }), ...(row.standby ?? { state: 'building', since: new Date(0).toISOString() }) }
      }
    }
  }
  if (state.active === undefined) throw new Error('the database has no index record')
  return state as ModelState
}

/** Writes the standby row (its index settings follow the active index's). */
export async function writeStandbyRow (db: Queryable, active: IndexRecord, rec: StandbyRecord): Promise<void> {
  const { modelId, dim, modelDir, ...details } = rec
  await db.query(
    `INSERT INTO index_settings (slot, model_id, dim, vector_type, m, ef_construction, model_dir, standby) VALUES ('standby', $1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (slot) DO UPDATE SET model_id = excluded.model_id, dim = excluded.dim, vector_type = excluded.vector_type, m = excluded.m,
       ef_construction = excluded.ef_construction, model_dir = excluded.model_dir, standby = excluded.standby, updated_at = clock_timestamp()`,
    [modelId, dim, active.vectorType, active.M, active.efConstruction, modelDir ?? null, JSON.stringify(details)])
}

/** whether `table` has the standby column now */
export async function hasStandbyColumn (db: Queryable, table: VectorTable): Promise<boolean> {
  const r = await db.query('SELECT 1 FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2 AND NOT attisdropped', [table, STANDBY_COLUMN])
  return (r.rowCount ?? 0) > 0
}
