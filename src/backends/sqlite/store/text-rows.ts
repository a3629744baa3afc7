/** SQLite rows of the text pool (the `texts` table) and their embeddings. */
import type Database from 'better-sqlite3'
import type { Metadata } from '../../../core/types.js'
import type { ReembedText, TextTemplate } from '../../ports.js'
import { vectorToBlob } from './vector-codec.js'
import { VectorRows, type VectorRowRef } from './vector-rows.js'

export interface NewTextRow { id: string, text: string, sha256: string, metadata: Metadata, embedding: Float32Array, template?: TextTemplate }

/** The `texts` table: the text pool searched for image → text (sha256 of the text is unique). */
export class TextRows extends VectorRows {
  private readonly ins
  private readonly get_
  private readonly reembed

  constructor (db: Database.Database, dim: number) {
    super(db, 'texts', dim)
    this.ins = db.prepare<[string, number, number, string, string, string, Buffer, string, string | null]>(
      `INSERT INTO texts (id, label, seq, text, sha256, metadata, embedding, created_at, template)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
    this.reembed = db.prepare<[string], { id: string, text: string, template: string | null }>('SELECT id, text, template FROM texts WHERE id = ?')
    this.get_ = db.prepare<[string], { id: string, text: string, metadata: string }>('SELECT id, text, metadata FROM texts WHERE id = ?')
  }

  /** Inserts one text and returns its label and seq. Call inside a transaction. */
  insert (row: NewTextRow): VectorRowRef {
    if (row.embedding.length !== this.dim) throw new RangeError(`embedding has ${row.embedding.length} dims, expected ${this.dim}`)
    const ref = this.allocate()
    this.ins.run(row.id, ref.label, ref.seq, row.text, row.sha256, JSON.stringify(row.metadata), vectorToBlob(row.embedding), new Date().toISOString(),
      row.template === undefined || row.template === null ? null : JSON.stringify(row.template))
    return ref
  }

  get (id: string): { id: string, text: string, metadata: Metadata } | undefined {
    const r = this.get_.get(id)
    return r === undefined ? undefined : { id: r.id, text: r.text, metadata: JSON.parse(r.metadata) as Metadata }
  }

  /** text and template of these texts (unknown ids are skipped) */
  forReembed (ids: string[]): ReembedText[] {
    const out: ReembedText[] = []
    for (const id of ids) {
      const r = this.reembed.get(id)
      if (r !== undefined) out.push({ id: r.id, text: r.text, template: r.template === null ? null : JSON.parse(r.template) as TextTemplate })
    }
    return out
  }
}
