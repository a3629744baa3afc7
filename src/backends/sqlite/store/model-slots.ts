/**
 * The two model slots of one SQLite store: the active model (its vectors in the `images` and
 * `texts` rows, identity in meta `model_id` / `dim`) and at most one standby model (its vectors in
 * `standby_vectors`, described by meta `standby`). A switch builds the standby slot; the swap
 * exchanges the slots in one transaction, so the database always names exactly one active model.
 */
import type Database from 'better-sqlite3'
import { ConflictError } from '../../../core/errors.js'
import type { StandbyRecord } from '../../ports.js'
import { standbyKey } from './standby-rows.js'
import type { VectorTableName } from './vector-rows.js'

const TABLES: VectorTableName[] = ['images', 'texts']

export function readStandby (db: Database.Database): StandbyRecord | undefined {
  const raw = db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'standby'").get()?.value
  return raw === undefined ? undefined : JSON.parse(raw) as StandbyRecord
}

export function writeStandby (db: Database.Database, rec: StandbyRecord): void {
  db.prepare<[string]>("INSERT INTO meta (key, value) VALUES ('standby', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(JSON.stringify(rec))
}

/** Removes the standby slot: its vectors, labels, counters and record. Call inside a transaction. */
export function dropStandby (db: Database.Database): void {
  db.exec('DELETE FROM standby_vectors')
  for (const t of TABLES) {
    db.prepare<[string]>('DELETE FROM free_labels WHERE tbl = ?').run(standbyKey(t))
    db.prepare<[string]>("UPDATE meta SET value = '0' WHERE key = ?").run(`next_label:${standbyKey(t)}`)
  }
  db.exec("DELETE FROM meta WHERE key = 'standby'")
}

/**
 * Exchanges the active and the standby slot. Call inside a transaction. Every active row must have
 * a standby vector (ConflictError otherwise: the switch is not complete); standby vectors of rows
 * deleted meanwhile are dropped. Each row keeps its label and seq with its vector, so both HNSW
 * indexes stay valid as they are: they only trade places.
 */
export function swapSlots (db: Database.Database, active: { modelId: string, dim: number, modelDir?: string }, standby: StandbyRecord): StandbyRecord {
  for (const t of TABLES) {
    const missing = db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM ${t} r WHERE NOT EXISTS (SELECT 1 FROM standby_vectors s WHERE s.tbl = '${t}' AND s.id = r.id)`).get()!.n
    if (missing > 0) throw new ConflictError(`the switch to ${standby.modelId} is not complete: ${missing} ${t} have no vector of it yet`)
    db.exec(`DELETE FROM standby_vectors WHERE tbl = '${t}' AND id NOT IN (SELECT id FROM ${t})`)
  }
  for (const t of TABLES) {
    db.exec(`
      CREATE TEMP TABLE swap_old AS SELECT id, label, seq, embedding FROM ${t};
      UPDATE ${t} SET label = -1 - label, seq = -1 - seq;
      UPDATE ${t} SET (label, seq, embedding) = (SELECT s.label, s.seq, s.embedding FROM standby_vectors s WHERE s.tbl = '${t}' AND s.id = ${t}.id);
      DELETE FROM standby_vectors WHERE tbl = '${t}';
      INSERT INTO standby_vectors (tbl, id, label, seq, embedding) SELECT '${t}', id, label, seq, embedding FROM swap_old;
      DROP TABLE swap_old;
      UPDATE free_labels SET tbl = '~swap' WHERE tbl = '${t}';
      UPDATE free_labels SET tbl = '${t}' WHERE tbl = '${standbyKey(t)}';
      UPDATE free_labels SET tbl = '${standbyKey(t)}' WHERE tbl = '~swap';
      UPDATE meta SET key = '~swap' WHERE key = 'next_label:${t}';
      UPDATE meta SET key = 'next_label:${t}' WHERE key = 'next_label:${standbyKey(t)}';
      UPDATE meta SET key = 'next_label:${standbyKey(t)}' WHERE key = '~swap';`)
  }
  const set = db.prepare<[string, string]>('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value')
  set.run('model_id', standby.modelId)
  set.run('dim', String(standby.dim))
  if (standby.modelDir !== undefined) set.run('model_dir', standby.modelDir)
  const previous: StandbyRecord = {
    modelId: active.modelId,
    dim: active.dim,
    ...(active.modelDir === undefined ? {} : { modelDir: active.modelDir }),
    state: 'ready',
    since: new Date().toISOString()
  }
  writeStandby(db, previous)
  return previous
}
