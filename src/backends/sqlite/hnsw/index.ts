/** The embedded engine's HNSW index: the graph, its snapshot files, and its rebuild from the SQLite rows. */
export { DEFAULT_HNSW, type HnswParams, type SearchResult, type SnapshotInfo, type VectorIndex } from './vector-index.js'
export { HnswIndex, SnapshotError, INSERT_SLICE_MS, FILTER_EF_FACTOR, MIN_CAPACITY, type HnswOptions } from './hnsw-index.js'
export { openVectorIndex, TableIndex, type OpenVectorIndexOptions, type VectorSource, type VectorRow, type VectorRowRef } from './open-vector-index.js'
export { sidecarPath } from './snapshot-file.js'
