/**
 * One vector table of the SQLite backend: its rows in SQLite (the source of truth) and its
 * HNSW index in this process's memory, kept in step (see src/backends/sqlite/hnsw/open-vector-index.ts).
 */
import type { TableIndex, VectorRow } from './hnsw/index.js'
import { ConflictError } from '../../core/errors.js'
import type { Store, VectorRows, VectorTableName } from './store/index.js'
import type { Metadata, MetadataFilter } from '../../core/types.js'
import type { VectorCollection, VectorHit, VectorSearchOptions } from '../ports.js'

export class SqliteCollection implements VectorCollection {
  /** the standby model's index of this table, while there is a standby model */
  standby: TableIndex | undefined

  /** `index` holds the active model's vectors; a model swap exchanges it with `standby` */
  constructor (protected readonly store: Store, readonly table: VectorTableName, public index: TableIndex) {}

  /** the active model's rows (replaced by a model swap) */
  protected get rows (): VectorRows { return this.store.table(this.table) }

  /**
   * The vector for the active model and, when the row carries one, for the standby model. Refuses
   * (ConflictError) a row embedded by a model that is no longer active: a swap happened meanwhile.
   */
  protected vectorsOf (row: { embedding: Float32Array, modelId?: string, alt?: { modelId: string, embedding: Float32Array } }): { active: Float32Array, standby?: Float32Array } {
    let active = row.embedding
    let other = row.alt
    if (row.modelId !== undefined && row.modelId !== this.store.modelId) {
      if (other?.modelId !== this.store.modelId) throw new ConflictError(`the active model changed to ${this.store.modelId} during this write; retry`)
      active = other.embedding
      other = { modelId: row.modelId, embedding: row.embedding }
    }
    const standby = this.store.standby
    return other !== undefined && standby !== undefined && other.modelId === standby.modelId ? { active, standby: other.embedding } : { active }
  }

  /** Inserts standby vectors just committed (rows from StandbyRows.put, in the same tick as the commit). */
  async appendStandby (added: Array<{ ref: VectorRow, replaced?: { label: number, seq: number } }>): Promise<void> {
    const index = this.standby
    if (index === undefined || added.length === 0) return
    for (const a of added) if (a.replaced !== undefined) index.remove(a.replaced)
    await index.append(added.map((a) => a.ref)).catch(() => {})
  }

  async count (): Promise<number> {
    return this.rows.count()
  }

  async idsBySha (sha256s: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>()
    for (const sha of sha256s) {
      const id = this.rows.idBySha(sha)
      if (id !== undefined) out.set(sha, id)
    }
    return out
  }

  async existingIds (ids: string[]): Promise<Set<string>> {
    return new Set(ids.filter((id) => this.rows.ref(id) !== undefined))
  }

  async embedding (id: string): Promise<Float32Array | undefined> {
    return this.rows.embedding(id)
  }

  async search (query: Float32Array, opts: VectorSearchOptions): Promise<VectorHit[]> {
    const keep = this.keeper(opts.filter, opts.excludeIds)
    const hits: VectorHit[] = []
    for (const r of this.index.search(query, opts.k, keep)) {
      if (opts.minScore !== undefined && r.score < opts.minScore) break
      const row = this.rows.hit(r.label)
      if (row === undefined) continue
      const hit: VectorHit = { id: row.id, score: r.score, metadata: row.metadata }
      if (row.text !== undefined) hit.text = row.text
      if (row.source !== undefined) hit.source = row.source
      if (opts.withEmbeddings === true) hit.embedding = this.rows.embeddingByLabel(r.label)!
      hits.push(hit)
    }
    return hits
  }

  async remove (id: string): Promise<boolean> {
    const standbyRows = this.store.standbyRows(this.table)
    const { ref, alt } = this.store.transaction(() => ({ ref: this.rows.remove(id), alt: standbyRows?.remove(id) }))
    // in the same tick as the commit: no search after this resolves can see it, in either model's index
    if (alt !== undefined) this.standby?.remove(alt)
    if (ref === undefined) return false
    this.index.remove(ref)
    return true
  }

  /** The filter as a label predicate for the HNSW walk; undefined when nothing is filtered. */
  private keeper (filter: MetadataFilter | undefined, excludeIds: string[] | undefined): ((label: number) => boolean) | undefined {
    const excluded = new Set<number>()
    for (const id of excludeIds ?? []) {
      const ref = this.rows.ref(id)
      if (ref !== undefined) excluded.add(ref.label)
    }
    const hasFilter = filter !== undefined && Object.keys(filter).length > 0
    if (!hasFilter && excluded.size === 0) return undefined
    const seen = new Map<number, boolean>()
    return (label) => {
      if (excluded.has(label)) return false
      if (!hasFilter) return true
      let ok = seen.get(label)
      if (ok === undefined) {
        const row = this.rows.hit(label)
        ok = row !== undefined && matches(row.metadata, filter)
        seen.set(label, ok)
      }
      return ok
    }
  }
}

function matches (metadata: Metadata, filter: MetadataFilter): boolean {
  for (const [k, v] of Object.entries(filter)) if (metadata[k] !== v) return false
  return true
}
