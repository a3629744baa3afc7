/**
 * Rows that own a vector in an HNSW index: `images` and `texts` share label allocation
 * (reusing freed labels), the `seq` row version, deletes and the reads the index replay needs.
 */
import type Database from 'better-sqlite3'
import { blobToVector } from './vector-codec.js'

export type VectorTableName = 'images' | 'texts'

/** A row's place in the index: `label` is the HNSW label, `seq` its row version. */
export interface VectorRowRef { label: number, seq: number }
export interface VectorRow extends VectorRowRef { vector: Float32Array }
/** What a search hit needs from its row. */
export interface HitRow { id: string, label: number, metadata: Record<string, unknown>, text?: string, /** images only */ source?: string | null }

const PAGE = 512

/** a stored vector row as the `after` and `byLabel` statements of a vector table read it */
interface StoredVector { label: number, seq: number, embedding: Buffer }

/** The rows `after` (seq > ?, in seq order, LIMIT ?) returns past `afterSeq`, a page at a time. */
export function * readVectorsAfter (after: Database.Statement<[number, number], StoredVector>, afterSeq: number, dim: number): Generator<VectorRow> {
  let from = afterSeq
  for (;;) {
    const page = after.all(from, PAGE)
    for (const r of page) yield { label: r.label, seq: r.seq, vector: blobToVector(r.embedding, dim) }
    const last = page[page.length - 1]
    if (page.length < PAGE || last === undefined) return
    from = last.seq
  }
}

/** The rows `byLabel` (label = ?) finds for these labels; missing labels are skipped. */
export function readVectorsByLabel (byLabel: Database.Statement<[number], StoredVector>, labels: number[], dim: number): VectorRow[] {
  const out: VectorRow[] = []
  for (const l of labels) {
    const r = byLabel.get(l)
    if (r !== undefined) out.push({ label: r.label, seq: r.seq, vector: blobToVector(r.embedding, dim) })
  }
  return out
}

export class VectorRows {
  private readonly st: ReturnType<typeof prepare>

  constructor (protected readonly db: Database.Database, readonly table: VectorTableName, readonly dim: number) {
    this.st = prepare(db, table)
    this.st.ensureCounter.run('seq')
    this.st.ensureCounter.run(`next_label:${table}`)
  }

  /**
   * A label (the smallest freed one, else a new one) and the next row version.
   * Call inside the transaction that inserts the row, so a rollback gives both back.
   */
  protected allocate (): VectorRowRef {
    const free = this.st.freeLabel.get(this.table)
    let label: number
    if (free !== undefined) {
      this.st.takeFree.run(this.table, free.label)
      label = free.label
    } else {
      label = Number(this.st.bump.get(`next_label:${this.table}`)!.value) - 1
    }
    const seq = Number(this.st.bump.get('seq')!.value)
    return { label, seq }
  }

  /** number of rows */
  count (): number {
    return this.st.count.get()!.n
  }

  /** label and seq of every row, ordered by label */
  labels (): VectorRowRef[] {
    return this.st.labels.all()
  }

  /** rows with `seq > afterSeq`, in seq order, read in pages so memory stays flat */
  vectorsAfter (afterSeq: number): Generator<VectorRow> {
    return readVectorsAfter(this.st.after, afterSeq, this.dim)
  }

  /** the rows holding these labels (missing labels are skipped) */
  vectorsByLabel (labels: number[]): VectorRow[] {
    return readVectorsByLabel(this.st.byLabel, labels, this.dim)
  }

  /**
   * The stored embeddings of these labels (missing labels are skipped), in one statement: about
   * 20 µs a row on the 2-core dev machine, against 170 µs for hnswlib-node's getPoint.
   */
  * embeddingsByLabel (labels: number[]): Generator<{ label: number, vector: Float32Array }> {
    for (const [label, blob] of this.st.embeddingsByLabel.iterate(JSON.stringify(labels)) as Iterable<[number, Buffer]>) {
      yield { label, vector: blobToVector(blob, this.dim) }
    }
  }

  /** the stored embedding of row `id` */
  embedding (id: string): Float32Array | undefined {
    const r = this.st.embeddingById.get(id)
    return r === undefined ? undefined : blobToVector(r.embedding, this.dim)
  }

  /** the stored embedding of the row at `label` */
  embeddingByLabel (label: number): Float32Array | undefined {
    const r = this.st.byLabel.get(label)
    return r === undefined ? undefined : blobToVector(r.embedding, this.dim)
  }

  /** label and seq of row `id` */
  ref (id: string): VectorRowRef | undefined {
    return this.st.refById.get(id)
  }

  /** the id of the row whose content hash is `sha256` */
  idBySha (sha256: string): string | undefined {
    return this.st.idBySha.get(sha256)?.id
  }

  /** the content hash of row `id` */
  shaOf (id: string): string | undefined {
    return this.st.shaById.get(id)?.sha256
  }

  /** id, metadata (and text, or source) of the row at `label` */
  hit (label: number): HitRow | undefined {
    const r = this.st.hit.get(label)
    if (r === undefined) return undefined
    const out: HitRow = { id: r.id, label: r.label, metadata: JSON.parse(r.metadata) as Record<string, unknown> }
    if (r.text !== undefined) out.text = r.text
    if (r.source !== undefined) out.source = r.source
    return out
  }

  /** label and metadata of every row, read in pages (for the metadata index built at open) */
  * labelMetadata (): Generator<{ label: number, metadata: Record<string, unknown> }> {
    let from = -1
    for (;;) {
      const page = this.st.metadataAfter.all(from, PAGE * 8)
      for (const r of page) yield { label: r.label, metadata: JSON.parse(r.metadata) as Record<string, unknown> }
      const last = page[page.length - 1]
      if (page.length < PAGE * 8 || last === undefined) return
      from = last.label
    }
  }

  /** up to `n` rows with an id after `after`, in id order (for listings) */
  page (after: string, n: number): Array<{ id: string, metadata: Record<string, unknown>, createdAt: string, text?: string, source?: string | null }> {
    return this.st.page.all(after, n).map((r) => {
      const out: { id: string, metadata: Record<string, unknown>, createdAt: string, text?: string, source?: string | null } =
        { id: r.id, metadata: JSON.parse(r.metadata) as Record<string, unknown>, createdAt: r.created_at }
      if (r.text !== undefined) out.text = r.text
      if (r.source !== undefined) out.source = r.source
      return out
    })
  }

  /** Deletes row `id` and frees its label for reuse; returns where it was in the index. Call inside a transaction. */
  remove (id: string): VectorRowRef | undefined {
    const ref = this.st.refById.get(id)
    if (ref === undefined) return undefined
    this.st.remove.run(id)
    this.st.addFree.run(this.table, ref.label)
    return ref
  }
}

function prepare (db: Database.Database, t: VectorTableName) {
  return {
    freeLabel: db.prepare<[string], { label: number }>('SELECT label FROM free_labels WHERE tbl = ? ORDER BY label LIMIT 1'),
    takeFree: db.prepare<[string, number]>('DELETE FROM free_labels WHERE tbl = ? AND label = ?'),
    addFree: db.prepare<[string, number]>('INSERT OR IGNORE INTO free_labels (tbl, label) VALUES (?, ?)'),
    bump: db.prepare<[string], { value: string }>('UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = ? RETURNING value'),
    ensureCounter: db.prepare<[string]>("INSERT OR IGNORE INTO meta (key, value) VALUES (?, '0')"),
    count: db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM ${t}`),
    labels: db.prepare<[], VectorRowRef>(`SELECT label, seq FROM ${t} ORDER BY label`),
    after: db.prepare<[number, number], { label: number, seq: number, embedding: Buffer }>(`SELECT label, seq, embedding FROM ${t} WHERE seq > ? ORDER BY seq LIMIT ?`),
    byLabel: db.prepare<[number], { label: number, seq: number, embedding: Buffer }>(`SELECT label, seq, embedding FROM ${t} WHERE label = ?`),
    embeddingsByLabel: db.prepare<[string], [number, Buffer]>(`SELECT label, embedding FROM ${t} WHERE label IN (SELECT value FROM json_each(?))`).raw(true),
    metadataAfter: db.prepare<[number, number], { label: number, metadata: string }>(`SELECT label, metadata FROM ${t} WHERE label > ? ORDER BY label LIMIT ?`),
    refById: db.prepare<[string], VectorRowRef>(`SELECT label, seq FROM ${t} WHERE id = ?`),
    remove: db.prepare<[string]>(`DELETE FROM ${t} WHERE id = ?`),
    embeddingById: db.prepare<[string], { embedding: Buffer }>(`SELECT embedding FROM ${t} WHERE id = ?`),
    idBySha: db.prepare<[string], { id: string }>(`SELECT id FROM ${t} WHERE sha256 = ?`),
    shaById: db.prepare<[string], { sha256: string }>(`SELECT sha256 FROM ${t} WHERE id = ?`),
    page: db.prepare<[string, number], { id: string, metadata: string, created_at: string, text?: string, source?: string | null }>(
      `SELECT id, metadata, created_at, ${t === 'texts' ? 'text' : 'source'} FROM ${t} WHERE id > ? ORDER BY id LIMIT ?`),
    hit: db.prepare<[number], { id: string, label: number, metadata: string, text?: string, source?: string | null }>(t === 'texts'
      ? 'SELECT id, label, metadata, text FROM texts WHERE label = ?'
      : 'SELECT id, label, metadata, source FROM images WHERE label = ?')
  }
}
