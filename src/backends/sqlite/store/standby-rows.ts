/**
 * The standby model's vectors (table `standby_vectors`): one row per image or text, with its own
 * HNSW label and a `seq` from the counter the active tables use, so the standby index is replayed
 * from its snapshot exactly as the active ones are (see schema.ts). During a switch the standby
 * model is the one being built; after the swap it is the previous model, kept for a swap back.
 */
import type Database from 'better-sqlite3'
import { blobToVector, vectorToBlob } from './vector-codec.js'
import { readVectorsAfter, readVectorsByLabel, type VectorRow, type VectorRowRef, type VectorTableName } from './vector-rows.js'

/** The name free labels and the label counter of a standby table go by. */
export function standbyKey (table: VectorTableName): string { return `standby:${table}` }

export class StandbyRows {
  private readonly st: ReturnType<typeof prepare>

  constructor (db: Database.Database, readonly table: VectorTableName, readonly dim: number) {
    this.st = prepare(db, table)
    this.st.ensureCounter.run('seq')
    this.st.ensureCounter.run(`next_label:${standbyKey(table)}`)
  }

  count (): number { return this.st.count.get()!.n }
  labels (): VectorRowRef[] { return this.st.labels.all() }

  vectorsAfter (afterSeq: number): Generator<VectorRow> {
    return readVectorsAfter(this.st.after, afterSeq, this.dim)
  }

  vectorsByLabel (labels: number[]): VectorRow[] {
    return readVectorsByLabel(this.st.byLabel, labels, this.dim)
  }

  embedding (id: string): Float32Array | undefined {
    const r = this.st.embeddingById.get(id)
    return r === undefined ? undefined : blobToVector(r.embedding, this.dim)
  }

  /** the id of the row at `label` */
  idOf (label: number): string | undefined { return this.st.idByLabel.get(label)?.id }

  /**
   * Stores (or replaces) the standby vector of row `id`; returns its place in the index and, when it
   * replaced one, the old place. Call inside a transaction.
   */
  put (id: string, vector: Float32Array): { ref: VectorRow, replaced?: VectorRowRef } {
    if (vector.length !== this.dim) throw new RangeError(`embedding has ${vector.length} dims, expected ${this.dim}`)
    const replaced = this.remove(id)
    const free = this.st.freeLabel.get(standbyKey(this.table))
    let label: number
    if (free !== undefined) {
      this.st.takeFree.run(standbyKey(this.table), free.label)
      label = free.label
    } else {
      label = Number(this.st.bump.get(`next_label:${standbyKey(this.table)}`)!.value) - 1
    }
    const seq = Number(this.st.bump.get('seq')!.value)
    this.st.insert.run(this.table, id, label, seq, vectorToBlob(vector))
    return { ref: { label, seq, vector }, ...(replaced === undefined ? {} : { replaced }) }
  }

  /** Deletes the standby vector of row `id` and frees its label. Call inside a transaction. */
  remove (id: string): VectorRowRef | undefined {
    const ref = this.st.refById.get(id)
    if (ref === undefined) return undefined
    this.st.remove.run(this.table, id)
    this.st.addFree.run(standbyKey(this.table), ref.label)
    return ref
  }

  /** up to `limit` ids of the active table that have no standby vector yet, in seq order */
  missing (limit: number): string[] {
    return this.st.missing.all(limit).map((r) => r.id)
  }

  /** how many rows of the active table have no standby vector yet */
  missingCount (): number { return this.st.missingCount.get()!.n }
}

function prepare (db: Database.Database, t: VectorTableName) {
  return {
    freeLabel: db.prepare<[string], { label: number }>('SELECT label FROM free_labels WHERE tbl = ? ORDER BY label LIMIT 1'),
    takeFree: db.prepare<[string, number]>('DELETE FROM free_labels WHERE tbl = ? AND label = ?'),
    addFree: db.prepare<[string, number]>('INSERT OR IGNORE INTO free_labels (tbl, label) VALUES (?, ?)'),
    bump: db.prepare<[string], { value: string }>('UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = ? RETURNING value'),
    ensureCounter: db.prepare<[string]>("INSERT OR IGNORE INTO meta (key, value) VALUES (?, '0')"),
    count: db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM standby_vectors WHERE tbl = '${t}'`),
    labels: db.prepare<[], VectorRowRef>(`SELECT label, seq FROM standby_vectors WHERE tbl = '${t}' ORDER BY label`),
    after: db.prepare<[number, number], { label: number, seq: number, embedding: Buffer }>(`SELECT label, seq, embedding FROM standby_vectors WHERE tbl = '${t}' AND seq > ? ORDER BY seq LIMIT ?`),
    byLabel: db.prepare<[number], { label: number, seq: number, embedding: Buffer }>(`SELECT label, seq, embedding FROM standby_vectors WHERE tbl = '${t}' AND label = ?`),
    idByLabel: db.prepare<[number], { id: string }>(`SELECT id FROM standby_vectors WHERE tbl = '${t}' AND label = ?`),
    refById: db.prepare<[string], VectorRowRef>(`SELECT label, seq FROM standby_vectors WHERE tbl = '${t}' AND id = ?`),
    embeddingById: db.prepare<[string], { embedding: Buffer }>(`SELECT embedding FROM standby_vectors WHERE tbl = '${t}' AND id = ?`),
    insert: db.prepare<[string, string, number, number, Buffer]>('INSERT INTO standby_vectors (tbl, id, label, seq, embedding) VALUES (?, ?, ?, ?, ?)'),
    remove: db.prepare<[string, string]>('DELETE FROM standby_vectors WHERE tbl = ? AND id = ?'),
    missing: db.prepare<[number], { id: string }>(`SELECT id FROM ${t} t WHERE NOT EXISTS (SELECT 1 FROM standby_vectors s WHERE s.tbl = '${t}' AND s.id = t.id) ORDER BY seq LIMIT ?`),
    missingCount: db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM ${t} t WHERE NOT EXISTS (SELECT 1 FROM standby_vectors s WHERE s.tbl = '${t}' AND s.id = t.id)`),
  }
}
