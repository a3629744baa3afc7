/**
 * One vector table of the SQLite backend: its rows in SQLite (the source of truth) and its
 * HNSW index in this process's memory, kept in step (see src/backends/sqlite/hnsw/open-vector-index.ts).
 */
import type { TableIndex, VectorRow } from './hnsw/index.js'
import type { Store, VectorRows, VectorTableName } from './store/index.js'
import { matchesFilter, parseFilter } from '../../core/metadata-filter.js'
import { clampCosine, l2normalize } from '../../core/vector-math.js'
import type { MetadataFilter } from '../../core/types.js'
import type { ListedRow, VectorCollection, VectorHit, VectorSearchOptions } from '../ports.js'
import { LabelSet } from './filter/label-set.js'
import { MetadataIndex } from './filter/metadata-index.js'
import { TopK } from './filter/top-k.js'
import type { SearchResult } from './hnsw/vector-index.js'

/**
 * A filter matching at most this many rows may be scored exactly over its matches: one multiply-add
 * per dimension on the index's int8 copy (1–2 µs a match with the filter's own cost, at 20k and
 * 100k rows, 256-d), then the best RESCORE × k again from their float vectors in SQLite. Above it
 * the HNSW walk checks the filter's bitmap; at 100k rows the two cost the same near 10,000 matches
 * (11 ms), and the walk costs 23× more at 1,000. Weaviate's flatSearchCutoff is 40,000.
 */
export const EXACT_MAX_MATCHES = 10_000
/** the exact path re-scores this many × k of its best int8 scores from the float vectors */
export const RESCORE = 3
/**
 * A broad filter takes the plain HNSW walk for `OVERSAMPLE × k / selectivity` candidates and keeps
 * those in the filter's bitmap: with the filter independent of the query, that many hold about
 * OVERSAMPLE × k matches, and fewer than k (a filter that shuns the query's neighbourhood) falls
 * back to the filtered walk. The filtered walk calls back into JavaScript for every node it visits
 * (~1 µs each, thousands at 10%), the plain walk does not.
 */
export const OVERSAMPLE = 2.5
/** the most candidates the oversampled walk asks for (hnswlib costs ~3 µs a candidate at 20k) */
export const OVERSAMPLE_MAX = 2048
/**
 * the exact path's cost per match in candidates of the oversampled walk: 1–2 µs a match against
 * 5–7 µs a candidate (both measured at 20k and 100k rows, 256-d)
 */
export const EXACT_COST_PER_MATCH = 0.3

/**
 * An oversampled walk that came back short of k is redone exactly when at most this share of the
 * rows match, else by the filtered walk: the two cost the same near 10% (20k rows: exact 2.3 ms
 * against a 6.5 ms walk at 10%, 7.9 against 4.5 at 25%; 100k rows: 11 ms each at 10%).
 */
export const EXACT_FALLBACK_SHARE = 0.1

/** How the last searches were answered (for tests and the bench). */
export interface SearchPaths {
  /** filtered searches scored exactly over the filter's matches */
  exact: number
  /** filtered searches that walked the HNSW graph */
  walk: number
  /** walks that came back short of k and were redone exactly */
  walkThenExact: number
  /** broad filters answered by the plain walk over more candidates, checked against the bitmap */
  oversample: number
  /** oversampled walks with fewer than k matches among the candidates, redone exactly or as a filtered walk */
  oversampleThenWalk: number
  /** vectors scored one by one by the exact path, from their int8 copy (it scores no others) */
  scored: number
  /** float vectors the exact path read from SQLite to re-score its best */
  rescored: number
}

export class SqliteCollection implements VectorCollection {
  /** the in-memory index on metadata (by the active model's labels), rebuilt from SQLite here and at a model swap, kept in step by add and remove */
  protected metadata = new MetadataIndex()
  /** the standby model's index of this table, while there is a standby model */
  standby: TableIndex | undefined
  readonly paths: SearchPaths = { exact: 0, walk: 0, walkThenExact: 0, oversample: 0, oversampleThenWalk: 0, scored: 0, rescored: 0 }
  /** a filter matching at most this many rows takes the exact path */
  exactMaxMatches = EXACT_MAX_MATCHES
  /** the most candidates of an oversampled walk (0: never oversample) */
  oversampleMax = OVERSAMPLE_MAX
  /** an oversampled walk short of k is redone exactly where at most this share of the rows match */
  exactFallbackShare = EXACT_FALLBACK_SHARE

  /** `index` holds the active model's vectors; a model swap exchanges it with `standby` */
  constructor (protected readonly store: Store, readonly table: VectorTableName, public index: TableIndex) {
    this.reindexMetadata()
  }

  /** the active model's rows (replaced by a model swap) */
  protected get rows (): VectorRows { return this.store.table(this.table) }

  /** Rebuilds the metadata index from SQLite: at open, and after a model swap changed every row's label. */
  reindexMetadata (): void {
    const metadata = new MetadataIndex()
    for (const r of this.rows.labelMetadata()) metadata.add(r.label, r.metadata)
    this.metadata = metadata
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

  /**
   * The planner: the metadata index says exactly which labels qualify, so the cost of each path is
   * known before it runs. A broad filter (or excluded ids alone): the plain walk over
   * `OVERSAMPLE × k / selectivity` candidates, kept when k of them match. Few matches: score them
   * exactly, when that costs less than the oversampled walk would. An oversampled walk that comes
   * back short is redone exactly where at most EXACT_FALLBACK_SHARE of the rows match. Otherwise:
   * walk the HNSW graph checking the bitmap per visited node; a walk that comes back with fewer
   * than k although k qualify (a filter that splits the graph) is redone exactly.
   */
  async search (query: Float32Array, opts: VectorSearchOptions): Promise<VectorHit[]> {
    const filter = parseFilter(opts.filter)
    const excluded: number[] = []
    for (const id of opts.excludeIds ?? []) {
      const ref = this.rows.ref(id)
      if (ref !== undefined) excluded.push(ref.label)
    }
    let found: SearchResult[] | undefined
    if (filter === undefined && excluded.length === 0) {
      found = this.index.search(query, opts.k)
    } else {
      const allowed = filter === undefined ? this.metadata.everything() : this.metadata.select(filter)
      for (const l of excluded) allowed.delete(l)
      const matches = allowed.size
      const want = Math.min(opts.k, matches)
      if (want === 0) return []
      const wide = Math.ceil(OVERSAMPLE * opts.k * Math.max(this.index.size, matches) / matches) + excluded.length
      const oversample = wide <= this.oversampleMax && wide < this.index.size
      if (matches <= Math.max(this.exactMaxMatches, opts.k) && !(oversample && wide < EXACT_COST_PER_MATCH * matches)) {
        this.paths.exact++
        found = this.exact(query, opts.k, allowed)
      } else {
        if (oversample) {
          this.paths.oversample++
          const kept = this.index.search(query, wide).filter((r) => allowed.has(r.label))
          if (kept.length >= want) found = kept.slice(0, opts.k)
          else this.paths.oversampleThenWalk++
        }
        if (found === undefined && matches <= Math.min(this.exactMaxMatches, this.index.size * this.exactFallbackShare)) {
          this.paths.exact++
          found = this.exact(query, opts.k, allowed)
        }
        if (found === undefined) {
          this.paths.walk++
          found = this.index.search(query, opts.k, (label) => allowed.has(label))
          if (found.length < want) {
            this.paths.walkThenExact++
            found = this.exact(query, opts.k, allowed)
          }
        }
      }
    }
    return this.toHits(found, opts)
  }

  /**
   * the k best of `labels` by cosine: each live one scored on its int8 copy, the best RESCORE × k
   * of those again from their float vectors (labels not in the HNSW index yet are skipped)
   */
  private exact (query: Float32Array, k: number, labels: LabelSet): SearchResult[] {
    const q = l2normalize(query)
    const rough = new TopK(RESCORE * k)
    for (const label of labels) {
      if (!this.index.has(label)) continue
      this.paths.scored++
      rough.push(label, this.index.approxCosine(q, label))
    }
    const top = new TopK(k)
    for (const { label, vector: v } of this.rows.embeddingsByLabel(rough.sorted().map((r) => r.label))) {
      this.paths.rescored++
      let dot = 0
      let norm = 0
      for (let i = 0; i < q.length; i++) { dot += q[i]! * v[i]!; norm += v[i]! * v[i]! }
      top.push(label, norm > 0 ? dot / Math.sqrt(norm) : 0)
    }
    return top.sorted().map((r) => ({ label: r.label, score: clampCosine(r.score) }))
  }

  private toHits (found: SearchResult[], opts: VectorSearchOptions): VectorHit[] {
    const hits: VectorHit[] = []
    for (const r of found) {
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
    // pages of rows in id order, filtered here with the same filter language as searches use
    const out: ListedRow[] = []
    let after = opts.after ?? ''
    const node = parseFilter(opts.filter)
    const hasFilter = node !== undefined
    while (out.length < opts.limit) {
      const page = this.rows.page(after, hasFilter ? 500 : opts.limit - out.length)
      for (const r of page) {
        if (node !== undefined && !matchesFilter(r.metadata, node)) continue
        out.push(r)
        if (out.length === opts.limit) break
      }
      const last = page.at(-1)
      if (last === undefined || page.length < (hasFilter ? 500 : 1)) break
      after = last.id
    }
    return out
  }

  /** Adds committed rows to the metadata index; call right after the commit, in the same tick. */
  protected indexMetadata (rows: Array<{ label: number, metadata: Record<string, unknown> }>): void {
    for (const r of rows) this.metadata.add(r.label, r.metadata)
  }

  async remove (id: string): Promise<boolean> {
    const standbyRows = this.store.standbyRows(this.table)
    const { removed, alt } = this.store.transaction(() => {
      const alt = standbyRows?.remove(id)
      const before = this.rows.ref(id)
      if (before === undefined) return { removed: undefined, alt }
      const metadata = this.rows.hit(before.label)?.metadata ?? {}
      const ref = this.rows.remove(id)
      return { removed: ref === undefined ? undefined : { ref, metadata }, alt }
    })
    // in the same tick as the commit: no search after this resolves can see it, in either model's index
    if (alt !== undefined) this.standby?.remove(alt)
    if (removed === undefined) return false
    this.metadata.delete(removed.ref.label, removed.metadata)
    this.index.remove(removed.ref)
    return true
  }
}
