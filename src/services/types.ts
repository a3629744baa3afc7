/**
 * The contract between the HTTP layer (src/routes, src/plugins) and the core services.
 * Core services never import fastify; routes never touch SQLite, HNSW or ONNX directly.
 */
import type { ModelConfig } from '../ml/types.js'

export type Metadata = Record<string, unknown>

/** One query term; exactly one of text | imageId | image | vector. `weight` defaults to 1 and may be negative. */
export type QueryTerm =
  | { text: string, weight?: number }
  | { imageId: string, weight?: number }
  | { image: Buffer, weight?: number }
  | { vector: number[], weight?: number }

export interface SearchRequest {
  query: QueryTerm[]
  target: 'images' | 'texts'
  k: number
  minScore?: number
  /** exact match on metadata keys */
  filter?: Record<string, string | number | boolean>
  explain?: boolean
}

export interface SearchHit { id: string, score: number, metadata: Metadata, text?: string, terms?: number[] }

export interface IngestItem { bytes: Buffer, id?: string, metadata?: Metadata }
export interface IngestResult { id: string, status: 'indexed' | 'duplicate' | 'failed', error?: string, code?: string }

export interface ImageRecord { id: string, sha256: string, width: number, height: number, metadata: Metadata, createdAt: string }

export type JobStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled'
/** A job source: files under IMPORT_DIR (items or a directory), or files already staged under DATA_DIR by an upload. */
export type JobSource =
  | { items: Array<{ path: string, id?: string, metadata?: Metadata }> }
  | { directory: string }
export interface JobView {
  id: string, status: JobStatus, total: number, done: number, failed: number
  errors: Array<{ item: string, error: string }>, createdAt: string, updatedAt: string
}

export interface IndexStats { images: number, texts: number, hnsw: { M: number, efConstruction: number, efSearch: number, capacity: number } }

export interface Services {
  readonly model: ModelConfig
  /** true once the model is loaded and both indexes are open */
  ready (): boolean
  embedTexts (texts: string[]): Promise<Float32Array[]>
  embedImages (images: Buffer[]): Promise<Float32Array[]>
  addImages (items: IngestItem[]): Promise<IngestResult[]>
  getImage (id: string): ImageRecord | undefined
  getThumbnail (id: string): { bytes: Buffer, contentType: string } | undefined
  deleteImage (id: string): boolean
  addTexts (items: Array<{ id?: string, text: string, metadata?: Metadata }>): Promise<Array<{ id: string, status: 'indexed' | 'duplicate' }>>
  deleteText (id: string): boolean
  search (req: SearchRequest): Promise<SearchHit[]>
  classify (image: Buffer, labels: string[], template?: string): Promise<Array<{ label: string, probability: number, score: number }>>
  createJob (source: JobSource): string
  /** stage uploaded files under DATA_DIR and create a job over them */
  createUploadJob (files: Array<{ bytes: Buffer, filename: string, id?: string, metadata?: Metadata }>): Promise<string>
  getJob (id: string): JobView | undefined
  cancelJob (id: string): JobView | undefined
  /** resolves once the job is done, failed or cancelled (or the service closes); undefined for an unknown id */
  waitForJob? (id: string): Promise<JobView | undefined>
  stats (): IndexStats
  close (): Promise<void>
}
