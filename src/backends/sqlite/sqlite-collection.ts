/**
 * One vector table of the SQLite backend: its rows in SQLite (the source of truth) and its
 * HNSW index in this process's memory, kept in step (see src/backends/sqlite/hnsw/open-vector-index.ts).
 */
import type { TableIndex } from './hnsw/index.js'
import type { Store, VectorRows } from './store/index.js'
import type { Metadata, MetadataFilter } from '../../core/types.js'
import type { ListedRow, VectorCollection, VectorHit, VectorSearchOptions } from '../ports.js'

export class SqliteCollection implements VectorCollection {
  constructor (protected readonly store: Store, protected readonly rows: VectorRows, readonly index: TableIndex) {}

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

  async list (opts: { limit: number, after?: string, filter?: MetadataFilter }): Promise<ListedRow[]> {
    // pages of rows in id order, filtered here with the same exact match as searches use
    const out: ListedRow[] = []
    let after = opts.after ?? ''
    const hasFilter = opts.filter !== undefined && Object.keys(opts.filter).length > 0
    while (out.length < opts.limit) {
      const page = this.rows.page(after, hasFilter ? 500 : opts.limit - out.length)
      for (const r of page) {
        if (hasFilter && !matches(r.metadata, opts.filter!)) continue
        out.push(r)
        if (out.length === opts.limit) break
      }
      const last = page.at(-1)
      if (last === undefined || page.length < (hasFilter ? 500 : 1)) break
      after = last.id
    }
    return out
  }

  async remove (id: string): Promise<boolean> {
    const ref = this.store.transaction(() => this.rows.remove(id))
    if (ref === undefined) return false
    this.index.remove(ref) // in the same tick as the commit: no search after this resolves can see it
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
