/** SQLite rows of the images (the `images` table): record, thumbnail, embedding, source. */
import type Database from 'better-sqlite3'
import type { ImageRecord, Metadata } from '../../../core/types.js'
import type { NewImage } from '../../ports.js'
import { vectorToBlob } from './vector-codec.js'
import { VectorRows, type VectorRowRef } from './vector-rows.js'

/** An image as the row store takes it: the port's NewImage with its id decided, and a source that may be null. */
export type NewImageRow = Omit<NewImage, 'id' | 'source'> & { id: string, source?: string | null }

interface ImageRecordRow { id: string, sha256: string, width: number, height: number, metadata: string, source: string | null, created_at: string }

/** The `images` table: one row per distinct image content (sha256 is unique). */
export class ImageRows extends VectorRows {
  private readonly ins
  private readonly get_
  private readonly thumb

  constructor (db: Database.Database, dim: number) {
    super(db, 'images', dim)
    this.ins = db.prepare<[string, number, number, string, number, number, string, Buffer, Buffer | null, string, string | null]>(
      `INSERT INTO images (id, label, seq, sha256, width, height, metadata, embedding, thumbnail, created_at, source)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
    this.get_ = db.prepare<[string], ImageRecordRow>('SELECT id, sha256, width, height, metadata, source, created_at FROM images WHERE id = ?')
    this.thumb = db.prepare<[string], { thumbnail: Buffer | null }>('SELECT thumbnail FROM images WHERE id = ?')
  }

  /** Inserts one image and returns its label and seq. Call inside a transaction. */
  insert (row: NewImageRow): VectorRowRef {
    if (row.embedding.length !== this.dim) throw new RangeError(`embedding has ${row.embedding.length} dims, expected ${this.dim}`)
    const ref = this.allocate()
    this.ins.run(row.id, ref.label, ref.seq, row.sha256, row.width, row.height, JSON.stringify(row.metadata),
      vectorToBlob(row.embedding), row.thumbnail, new Date().toISOString(), row.source ?? null)
    return ref
  }

  get (id: string): ImageRecord | undefined {
    const r = this.get_.get(id)
    if (r === undefined) return undefined
    return { id: r.id, sha256: r.sha256, width: r.width, height: r.height, metadata: JSON.parse(r.metadata) as Metadata, source: r.source, createdAt: r.created_at }
  }

  /** the stored WebP thumbnail */
  thumbnail (id: string): Buffer | undefined {
    return this.thumb.get(id)?.thumbnail ?? undefined
  }
}
