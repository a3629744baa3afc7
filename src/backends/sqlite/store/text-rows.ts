/** SQLite rows of the text pool (the `texts` table) and their embeddings. */
import type Database from 'better-sqlite3'
import type { Metadata } from '../../../core/types.js'
import { vectorToBlob } from './vector-codec.js'
import { VectorRows, type VectorRowRef } from './vector-rows.js'

export interface NewTextRow { id: string, text: string, sha256: string, metadata: Metadata, embedding: Float32Array }

/** The `texts` table: the text pool searched for image → text (sha256 of the text is unique). */
export class TextRows extends VectorRows {
  private readonly ins
  private readonly get_

  constructor (db: Database.Database, dim: number) {
    super(db, 'texts', dim)
    this.ins = db.prepare<[string, number, number, string, string, string, Buffer, string]>(
      `INSERT INTO texts (id, label, seq, text, sha256, metadata, embedding, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
    this.get_ = db.prepare<[string], { id: string, text: string, metadata: string }>('SELECT id, text, metadata FROM texts WHERE id = ?')
  }

  /** Inserts one text and returns its label and seq. Call inside a transaction. */
  insert (row: NewTextRow): VectorRowRef {
    if (row.embedding.length !== this.dim) throw new RangeError(`embedding has ${row.embedding.length} dims, expected ${this.dim}`)
    const ref = this.allocate()
    this.ins.run(row.id, ref.label, ref.seq, row.text, row.sha256, JSON.stringify(row.metadata), vectorToBlob(row.embedding), new Date().toISOString())
    return ref
  }

  get (id: string): { id: string, text: string, metadata: Metadata } | undefined {
    const r = this.get_.get(id)
    return r === undefined ? undefined : { id: r.id, text: r.text, metadata: JSON.parse(r.metadata) as Metadata }
  }
}
