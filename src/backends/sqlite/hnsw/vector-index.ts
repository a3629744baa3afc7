/** The in-process vector index's contract and HNSW defaults; hnsw-index.ts implements it with hnswlib-node. */
import { DEFAULT_HNSW as DEFAULTS } from '../../../core/limits.js'
import type { HnswParams } from '../../../core/types.js'

/** The vector index contract: labels are non-negative integers chosen by the caller (the SQLite row's label). */

export interface SearchResult {
  label: number
  /** cosine similarity, 1 − cosine distance, in [-1, 1] */
  score: number
}

export type { HnswParams }

export const DEFAULT_HNSW: Readonly<HnswParams> = DEFAULTS

export interface VectorIndex {
  readonly dim: number
  /** live (not deleted) vectors */
  readonly size: number
  /** slots allocated; grows ×2 when full */
  readonly capacity: number
  has (label: number): boolean
  /** Adds or replaces vectors, in chunks that yield to the event loop between them. */
  add (labels: number[], vectors: Float32Array[]): Promise<void>
  /** Removes `label` at once (synchronously); false when it was not there. */
  remove (label: number): boolean
  /** the `k` nearest live vectors, best first; `filter` keeps only labels it returns true for */
  search (query: Float32Array, k: number, filter?: (label: number) => boolean): SearchResult[]
  /** Writes the index to `path` atomically (temp file, fsync, rename). */
  snapshot (path: string, meta?: Record<string, unknown>): Promise<SnapshotInfo>
}

/** What the sidecar `<path>.json` of a snapshot records. */
export interface SnapshotInfo {
  format: 1
  dim: number
  space: 'cosine'
  M: number
  efConstruction: number
  capacity: number
  /** live vectors */
  count: number
  /** labels marked deleted in the file */
  deleted: number[]
  /** size and SHA-256 of the index file, checked before loading */
  bytes: number
  sha256: string
  /** caller-defined, e.g. `{ seq }`: the last row version contained */
  meta: Record<string, unknown>
  writtenAt: string
}
