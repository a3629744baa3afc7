/**
 * The contract between the HTTP layer (src/http) and the core services.
 * Core services never import fastify; routes never touch a backend or ONNX directly.
 */
import type { BackendHealth, BackendName, CollectionName, IndexInfo, ListedRow } from '../backends/ports.js'
import type { ModelConfig } from '../ml/types.js'
import type { BackupService } from './backups.js'
import type { ModelService } from './model-switch.js'
import type { ImageRecord, IngestItem, IngestResult, JobSource, JobView, Metadata, MetadataFilter } from '../core/types.js'

export type { ImageRecord, IngestItem, IngestResult, JobSource, JobStatus, JobView, Metadata, MetadataFilter } from '../core/types.js'
export type { BackendHealth, BackendName, CollectionName, IndexInfo, ListedRow } from '../backends/ports.js'

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
  filter?: MetadataFilter
  explain?: boolean
  /**
   * target "images": hits leave out the images that `imageId` terms name (they would match
   * themselves best), unless this is true
   */
  includeQueryImages?: boolean
}

/** A file of an upload job: its bytes whole, or as they arrive (read once, while it is staged). */
export interface UploadedFile { bytes: Buffer | AsyncIterable<Buffer>, filename: string, id?: string, metadata?: Metadata }

/** `source` (images only) is the image's ImageRecord.source; `text` (texts only) the indexed text. */
export interface SearchHit { id: string, score: number, metadata: Metadata, source?: string | null, text?: string, terms?: number[] }

export interface IndexStats {
  backend: BackendName
  images: number
  texts: number
  /** false when a count is the planner's estimate (large PostgreSQL tables) */
  countsExact: boolean
  index: IndexInfo
}

export interface Services {
  readonly model: ModelConfig
  /** true once the model is loaded and the backend is open (false again once closing) */
  ready (): boolean
  /** whether the backend can serve now; `reason` says why not */
  health (): Promise<BackendHealth>
  embedTexts (texts: string[]): Promise<Float32Array[]>
  embedImages (images: Buffer[]): Promise<Float32Array[]>
  addImages (items: IngestItem[]): Promise<IngestResult[]>
  getImage (id: string): Promise<ImageRecord | undefined>
  getThumbnail (id: string): Promise<{ bytes: Buffer, contentType: string } | undefined>
  /** resolves true when the image existed; once resolved, no search returns it */
  deleteImage (id: string): Promise<boolean>
  /** `template` (with "{}") shapes each text's vector only; the text is what is stored and returned */
  addTexts (items: Array<{ id?: string, text: string, metadata?: Metadata }>, opts?: { template?: string }): Promise<Array<{ id: string, status: 'indexed' | 'duplicate' }>>
  /** one page of stored images or texts in id order, after the id `after`, exact match on metadata keys */
  listRows (collection: CollectionName, opts: { limit: number, after?: string, filter?: MetadataFilter }): Promise<ListedRow[]>
  /** deletes every image or text whose metadata matches `filter` exactly (at least one key); resolves with how many */
  deleteRows (collection: CollectionName, filter: MetadataFilter): Promise<number>
  deleteText (id: string): Promise<boolean>
  search (req: SearchRequest): Promise<SearchHit[]>
  classify (image: Buffer, labels: string[], template?: string): Promise<Array<{ label: string, probability: number, score: number }>>
  createJob (source: JobSource): Promise<string>
  /**
   * Stages uploaded files where every index worker can read them (DATA_DIR/uploads, or the database
   * in cluster mode), each as its bytes arrive, and creates a job over them. The job exists only
   * once every file is staged; on a throw nothing staged is left.
   */
  createUploadJob (files: UploadedFile[] | AsyncIterable<UploadedFile>): Promise<string>
  getJob (id: string): Promise<JobView | undefined>
  /** up to `limit` jobs, newest first; `before` is the id of the previous page's last job */
  listJobs (opts: { limit: number, before?: string }): Promise<JobView[]>
  cancelJob (id: string): Promise<JobView | undefined>
  /** runs a failed job again (cluster mode); undefined for an unknown id; ConflictError unless it failed */
  resumeJob (id: string): Promise<JobView | undefined>
  /** resolves once the job is done, failed or cancelled (or the service closes); undefined for an unknown id */
  waitForJob? (id: string): Promise<JobView | undefined>
  stats (): Promise<IndexStats>
  /** online backups (the embedded backend); on PostgreSQL every call answers 501 NOT_IMPLEMENTED pointing to pg_dump */
  backups?: BackupService
  /** the model on standby (a switch's target, or the previous model kept for a swap back) */
  readonly standbyModel?: ModelConfig | undefined
  /** model switches (README "Changing the model"); on PostgreSQL every call answers 501 NOT_IMPLEMENTED */
  models?: ModelService
  close (): Promise<void>
}

/**
 * The Services calls that need the opened model and backend, written once: the never-ready stub
 * (src/http/plugins/services.ts) and the services-while-the-database-is-down proxy
 * (src/main/wiring/open-when-reachable.ts) answer each of them, and the compiler checks the list
 * against the interface both ways.
 */
export const SERVICE_CALLS = ['embedTexts', 'embedImages', 'addImages', 'getImage', 'getThumbnail', 'deleteImage', 'addTexts', 'deleteText', 'listRows', 'deleteRows',
  'search', 'classify', 'createJob', 'createUploadJob', 'getJob', 'listJobs', 'cancelJob', 'resumeJob', 'stats'] as const satisfies ReadonlyArray<keyof Services>
export type ServiceCall = typeof SERVICE_CALLS[number]
/** fails to compile when Services gains a call that SERVICE_CALLS lacks */
type MissingCall = Exclude<keyof Services, ServiceCall | 'model' | 'standbyModel' | 'ready' | 'health' | 'close' | 'waitForJob' | 'backups' | 'models'>
export const noMissingCall: [MissingCall] extends [never] ? true : MissingCall = true
