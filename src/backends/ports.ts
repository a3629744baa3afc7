/**
 * The ports the services talk to. A backend (SQLite + hnswlib in one process, or PostgreSQL +
 * pgvector shared by many) implements them in its own folder; one contract test suite
 * (test/backends/contract.test.ts) runs against every adapter.
 *
 * Everything is async, and every write that must be atomic is one call.
 */
import type { ImageRecord, JobSkipped, JobStatus, JobView, Metadata, MetadataFilter } from '../core/types.js'

export type BackendName = 'sqlite' | 'postgres'
export type CollectionName = 'images' | 'texts'

/** One search hit as the backend returns it; `score` is the cosine similarity. */
export interface VectorHit {
  id: string
  score: number
  metadata: Metadata
  /** texts only */
  text?: string
  /** the stored embedding, when `withEmbeddings` was asked (for explain) */
  embedding?: Float32Array
  /** images only: the stored source (ImageRecord.source), null when none was recorded */
  source?: string | null
}

export interface VectorSearchOptions {
  k: number
  /** exact match on metadata keys; a selective filter still returns k hits when k match */
  filter?: MetadataFilter
  /** hits scoring below it are dropped (after the k nearest are found) */
  minScore?: number
  withEmbeddings?: boolean
  /** ids never returned (e.g. the query's own images) */
  excludeIds?: string[]
}

/** One row of a listing: images carry `source`, texts `text`. */
export interface ListedRow { id: string, metadata: Metadata, createdAt: string, text?: string, source?: string | null }

/** What happened to one row of a write. */
export type WriteOutcome =
  | { status: 'indexed', id: string }
  | { status: 'duplicate', id: string }
  | { status: 'failed', code: 'CONFLICT', error: string }

/** A vector table: images or texts. */
export interface VectorCollection {
  count (): Promise<number>
  /**
   * The count for display, cheap at any size: exact on small tables, the planner's estimate
   * (`exact: false`) on large ones. Absent where count() is cheap already.
   */
  displayCount?: () => Promise<{ n: number, exact: boolean }>
  /** stored ids by content hash (sha256 hex); hashes not stored are absent */
  idsBySha (sha256s: string[]): Promise<Map<string, string>>
  /** which of `ids` are stored */
  existingIds (ids: string[]): Promise<Set<string>>
  /** the stored embedding of row `id` */
  embedding (id: string): Promise<Float32Array | undefined>
  /** the k nearest rows by cosine, best first */
  search (query: Float32Array, opts: VectorSearchOptions): Promise<VectorHit[]>
  /**
   * One page of stored rows in id order: those with an id after `after` (the previous page's last
   * id), matching `filter` exactly on metadata keys; `limit` rows at most.
   */
  list (opts: { limit: number, after?: string, filter?: MetadataFilter }): Promise<ListedRow[]>
  /**
   * Deletes row `id`; resolves true when it existed. Once it resolves, no search in any process
   * sharing this backend returns the row.
   */
  remove (id: string): Promise<boolean>
}

export interface NewImage {
  /** when absent the backend takes `contentId(sha256)`, or a UUID when that id is taken */
  id?: string
  sha256: string
  width: number
  height: number
  metadata: Metadata
  embedding: Float32Array
  /** small WebP for the UI */
  thumbnail: Buffer | null
  /** where the image came from (a path relative to IMPORT_DIR, or an uploaded file's name); stored as null when absent */
  source?: string
  /** a preview kept for re-embedding with another model (PREVIEW_SIZE); width and height are the preview's */
  preview?: { bytes: Buffer, width: number, height: number }
  /** the uploaded bytes themselves (KEEP_ORIGINALS) */
  original?: Buffer
  /** the model `embedding` comes from; when it is no longer the active one, `alt` must be (else the write is refused) */
  modelId?: string
  /** the same image embedded by a second model (during a switch, or while the previous model is on standby) */
  alt?: ModelVector
}

/** A vector and the model it comes from. */
export interface ModelVector { modelId: string, embedding: Float32Array }

/**
 * How a text was encoded: as it is (null), with a literal template ("an icon of {}"), or with the
 * model's own template (`{ model: true }`), which a model switch replaces with the new model's.
 */
export type TextTemplate = null | { literal: string } | { model: true }

export interface NewText {
  id?: string
  text: string
  sha256: string
  metadata: Metadata
  embedding: Float32Array
  /** how `embedding` was made from `text` (default null: as it is) */
  template?: TextTemplate
  modelId?: string
  alt?: ModelVector
}

/**
 * One job item's result, written in the same transaction as the images of its batch.
 * - `row`: the outcome of rows[row] of the same write; with `duplicate: true` the item repeats that
 *   row's bytes (same content twice in one batch), so it is a `duplicate` of the id the row gets
 *   (or fails with it)
 * - `status`: known without the write; a `duplicate` carries the stored `id` it repeats
 */
export type JobItemOutcome =
  | { seq: number, item: string, row: number, duplicate?: true }
  | { seq: number, item: string, status: 'indexed' | 'duplicate' | 'failed', error?: string, id?: string }

/** Job progress committed together with a write. */
export interface JobProgress { jobId: string, outcomes: JobItemOutcome[] }

export interface ImageCollection extends VectorCollection {
  get (id: string): Promise<ImageRecord | undefined>
  /** the stored WebP thumbnail */
  thumbnail (id: string): Promise<Buffer | undefined>
  /**
   * ONE atomic write: the rows, their vectors and the job's progress commit together or not at
   * all. A row whose sha256 is already stored is a `duplicate` of the stored id; a row whose id
   * belongs to other content `failed` (CONFLICT). Resolves once the rows are searchable.
   */
  add (rows: NewImage[], progress?: JobProgress): Promise<WriteOutcome[]>
}

export interface TextCollection extends VectorCollection {
  /**
   * ONE atomic write. A text already stored (same sha256) is a `duplicate`; an id used by
   * another text throws ConflictError and nothing is stored.
   */
  add (rows: NewText[]): Promise<WriteOutcome[]>
}

export type JobKind = 'items' | 'directory' | 'upload'
/** One file of a job: `path` is relative to the job's root; `name` is what errors call it (defaults to path). */
export interface JobItem { path: string, id?: string, metadata?: Metadata, name?: string }
export interface JobError { item: string, error: string }
/** a duplicate job item and the stored id whose bytes it repeats */
export interface JobDuplicate { item: string, id: string }

export interface JobRow {
  id: string
  kind: JobKind
  status: JobStatus
  /** what the job was made from, as the client gave it */
  source: JobSourceRecord
  /** absolute folder the item paths are relative to */
  root: string
  /** remove `root` when the job finishes (uploads staged under DATA_DIR) */
  cleanup: boolean
  /** false while a directory job's files are not listed yet */
  expanded: boolean
  total: number
  /** indexed + duplicate */
  done: number
  /** items stored as new images */
  indexed: number
  /** items whose bytes were already stored (under the id `duplicates` names) */
  duplicate: number
  failed: number
  /** the first MAX_JOB_ERRORS failures */
  errors: JobError[]
  /** the first MAX_JOB_DUPLICATES duplicates */
  duplicates: JobDuplicate[]
  /** cluster jobs: the run (0, one more per resume) */
  attempt?: number
  /** cluster jobs: the batch size its planner split it by */
  batchSize?: number
  /** what a directory job's listing left out */
  skipped: JobSkipped
  createdAt: string
  updatedAt: string
}

/**
 * What a job was made from, stored with it and shown in its view: a count of listed items or
 * uploaded files, a folder under IMPORT_DIR, or the demo pool's folder. One key tells which.
 */
export type JobSourceRecord =
  | { items: number }
  | { upload: number }
  | { directory: string, idFromPath?: boolean }
  | { demoPool: string }

export interface NewJob { id: string, kind: JobKind, source: JobSourceRecord, root: string, cleanup?: boolean, items?: JobItem[] }

export interface JobStore {
  /** Creates a queued job; without `items` it is a directory job whose files are listed later by `expand`. */
  create (job: NewJob): Promise<void>
  get (id: string): Promise<JobRow | undefined>
  view (id: string): Promise<JobView | undefined>
  /** newest first; `before` is the id of the previous page's last job (an unknown id gives an empty page) */
  list (opts: { limit: number, before?: string }): Promise<JobView[]>
  /** queued and running jobs, oldest first */
  unfinished (): Promise<JobRow[]>
  setStatus (id: string, status: JobStatus): Promise<void>
  /** Sets the status unless the job is already done, failed or cancelled; resolves true when it changed. */
  setStatusUnlessTerminal (id: string, status: JobStatus): Promise<boolean>
  /** Appends a job-level error (kept within MAX_JOB_ERRORS). */
  addError (id: string, error: JobError): Promise<void>
  /**
   * Lists a directory job's files, records what the listing skipped and sets its total, once: the job row is locked, and a job
   * already expanded is left as it is (resolves false), so a plan delivered twice never resets
   * progress. Resolves true when this call listed the job.
   */
  expand (id: string, items: JobItem[], skipped?: JobSkipped): Promise<boolean>
  /** up to `limit` items still pending, in order; only those after `afterSeq` when given (a batch's range) */
  pending (id: string, limit: number, afterSeq?: number): Promise<Array<{ seq: number, item: JobItem }>>
  /**
   * Records outcomes that need no image write (unreadable files); items already recorded are skipped.
   * Here and in ImageCollection.add, each outcome counts once into indexed, duplicate or failed
   * (done = indexed + duplicate), a failure appends to `errors` and a duplicate to `duplicates`
   * (each kept within its bound, the counts stay exact).
   */
  complete (progress: JobProgress): Promise<void>
}

/**
 * Uploaded files of index jobs, kept in the backend so that any worker process can read them
 * (the PostgreSQL backend; the embedded one stages them on its own disk, see jobs/staging.ts).
 */
export interface UploadStaging {
  /** Stores the files of job `jobId` under their `path`s (all or none). */
  put (jobId: string, files: Array<{ path: string, bytes: Buffer }>): Promise<void>
  /**
   * Stores one file of job `jobId` as `source` yields it, without holding it whole; resolves with
   * its size. Throws StorageFullError (507) when the staging cap is reached; after any throw the
   * caller removes the job's files (`remove`).
   */
  putStream (jobId: string, path: string, source: Iterable<Buffer> | AsyncIterable<Buffer>): Promise<number>
  /** the bytes of each path, in order; undefined where none is staged */
  read (jobId: string, paths: string[]): Promise<Array<Buffer | undefined>>
  /** Removes the files of job `jobId`. */
  remove (jobId: string): Promise<void>
  /**
   * Removes the files of jobs that are done, cancelled, unknown (left by a crash), or failed more
   * than `keepFailedMs` ago (a failed job keeps its files that long, so it can be resumed);
   * resolves with how many jobs.
   */
  removeFinished (keepFailedMs?: number): Promise<number>
}

/**
 * What cluster jobs (src/jobs/cluster) need of the job rows beyond JobStore: the run a message
 * belongs to, the batch size a planner chose, and resuming a failed job. The PostgreSQL backend's.
 */
export interface ClusterJobStore extends JobStore {
  /** the job's run number (0, then one more per resume): its queue messages' ids include it */
  attempt (id: string): Promise<number | undefined>
  /** Records the batch size job `id` was split by (the sweep re-sends lost batches by it). */
  setBatchSize (id: string, size: number): Promise<void>
  /** the batch numbers (seq / batch size) of running, expanded jobs' items still pending, by job */
  pendingBatches (): Promise<Array<{ jobId: string, attempt: number, batchSize: number, total: number, batches: number[] }>>
  /** Marks job `id` failed with `error` unless it is finished already; resolves true when it did. */
  fail (id: string, error: JobError): Promise<boolean>
  /** A failed job queued again as its next run; resolves with that run's number, or undefined when the job is not failed. */
  resume (id: string): Promise<number | undefined>
}

export interface IndexInfo {
  /** the vector index's kind, e.g. "hnswlib" or "pgvector hnsw (vector)" */
  kind: string
  M: number
  efConstruction: number
  efSearch: number
  /** hnswlib's allocated capacity; null where the index grows by itself */
  capacity: number | null
  /** PostgreSQL: how the index stores vectors, from the database's index record */
  vectorType?: 'vector' | 'halfvec'
  /** PostgreSQL: this process's settings that differ from the database's record, which it follows instead */
  settingsIgnored?: string[]
}

/** One backup file (the embedded backend's `backups` capability). */
export interface BackupInfo {
  /** the file name inside BACKUP_DIR, e.g. align-search-2024-05-01T10-00-00-000Z.tar */
  name: string
  /** size of the file, bytes */
  bytes: number
  /** when the backup's snapshot was taken (ISO time) */
  createdAt: string
  /** images and texts it holds */
  images: number
  texts: number
  /** jobs that were queued or running at that moment: they resume when a restored server starts */
  unfinishedJobs: Array<{ id: string, status: string, done: number, failed: number, total: number }>
  /** written by the schedule (BACKUP_EVERY), which keeps only the newest BACKUP_KEEP of its own */
  scheduled: boolean
}

/**
 * Online backups of a backend that keeps its data in files of its own (the embedded one). A
 * backend without it (PostgreSQL) is backed up with its own tools (pg_dump).
 */
export interface BackupStore {
  /** Writes one consistent backup file while reads and writes go on; resolves with what it holds. */
  create (opts?: { scheduled?: boolean }): Promise<BackupInfo>
  /** newest first */
  list (): Promise<BackupInfo[]>
  /** the absolute path and facts of backup `name`; undefined when there is none by that name */
  get (name: string): Promise<{ file: string, info: BackupInfo } | undefined>
  /** resolves true when it existed */
  remove (name: string): Promise<boolean>
}

export interface BackendHealth { ok: boolean, reason?: string }

/**
 * The model slot beside the active one: `building` while a switch fills it, `ready` once it holds a
 * vector for every row (after a swap: the previous model, kept until DELETE /v1/models/standby).
 */
export interface StandbyRecord {
  modelId: string
  dim: number
  /** the model folder, relative to MODELS_DIR when under it */
  modelDir?: string
  state: 'building' | 'ready'
  /** when the slot entered this state (ISO time) */
  since: string
  /** images with neither a readable source nor a large-enough preview: left out, or embedded from the small preview */
  lowResolution?: 'skip' | 'proceed'
  /** images left out of this model (lowResolution 'skip') */
  skipped?: number
}

/** What re-embedding one stored image can read. */
export interface ReembedImage {
  id: string
  sha256: string
  source: string | null
  width: number
  height: number
  preview: { bytes: Buffer, width: number, height: number } | null
  original: Buffer | null
}

export interface ReembedText { id: string, text: string, template: TextTemplate }

/**
 * A backend that keeps a second model's vectors beside the active ones and swaps them atomically
 * (both backends: src/backends/sqlite/sqlite-model-slots.ts, src/backends/postgres/pg-model-slots.ts).
 */
export interface ModelSlots {
  /** the active model's identity */
  active (): BackendIdentity & { modelDir?: string }
  standby (): StandbyRecord | undefined
  /**
   * Starts filling the standby slot for `rec`: vectors of the same model already there are kept (a
   * resumed switch, or a swap back), those of another model are dropped first.
   */
  beginStandby (rec: StandbyRecord): Promise<void>
  /**
   * Up to `limit` ids that have no standby vector yet. Where other processes share the slots
   * (PostgreSQL) they fill it together: the ids are claimed for this process, and ids another
   * process holds a live claim on are left out. A claim ends when putStandby stores the row, on
   * unclaim(), or when its holder stops renewing it (it died): then another process claims the row.
   */
  missing (table: CollectionName, limit: number): Promise<string[]>
  missingCount (table: CollectionName): Promise<number>
  /** ids of images with no original bytes and no preview whose shorter side is at least `minSide` (their source may still be readable) */
  weakImages (minSide: number): Promise<Array<{ id: string, sha256: string, source: string | null }>>
  images (ids: string[]): Promise<ReembedImage[]>
  texts (ids: string[]): Promise<ReembedText[]>
  /**
   * Stores standby vectors of the standby model; ids deleted meanwhile are skipped. An all-zero
   * vector marks a row left out of that model (kept, never searchable by it). Resolves once they
   * are in the standby index. With `model`, ConflictError when the standby slot is no longer that
   * model's (a process that stalled past its claim, while another swapped or began another switch).
   */
  putStandby (table: CollectionName, rows: Array<{ id: string, embedding: Float32Array }>, model?: string): Promise<void>
  standbyEmbedding (table: CollectionName, id: string): Promise<Float32Array | undefined>
  /**
   * ONE atomic step: the standby model becomes active and the active one the standby; ConflictError
   * when incomplete. `onSwapped` runs synchronously right after it, before any other search or write
   * of this process runs (the services exchange their encoders there).
   */
  swap (onSwapped?: () => void): Promise<StandbyRecord>
  dropStandby (): Promise<void>
  /**
   * Where other processes share the slots (PostgreSQL): `fn` runs whenever one of them began a
   * switch, swapped or dropped the standby model, in the same tick as active() and standby() (and
   * this process's searches) follow the change.
   */
  onChange?: (fn: () => void) => void
  /** Where other processes share the slots: re-reads them now (a search refused as encoded by the model no longer active calls it) */
  refresh?: () => Promise<void>
  /**
   * Where other processes share the slots: makes this process the one that fills the standby slot
   * and swaps, resolving the function that lets go; undefined while another process does. The
   * claim ends with its holder's connection, so a process that dies hands the switch on.
   */
  lead?: () => Promise<(() => Promise<void>) | undefined>
  /** Where other processes share the slots: whether any process holds a live claim of rows to fill (see missing) */
  claimsLive?: () => Promise<boolean>
  /** Where other processes share the slots: gives back the rows this process claimed and did not fill (its fill stopped) */
  unclaim?: () => Promise<void>
}

/** One storage backend: source of truth for images, texts, their vectors and the jobs. */
export interface Backend {
  readonly name: BackendName
  readonly images: ImageCollection
  readonly texts: TextCollection
  readonly jobs: JobStore
  /** where job uploads are staged for every process; absent when only this process runs jobs (SQLite) */
  readonly staging?: UploadStaging
  /** online backups into files; absent where the backend has its own tools (PostgreSQL: pg_dump) */
  readonly backups?: BackupStore
  /** a second model's vectors beside the active ones (model switches) */
  readonly models?: ModelSlots
  /** the job rows as cluster jobs use them; absent when only this process runs jobs (SQLite) */
  readonly clusterJobs?: ClusterJobStore
  /** small settings kept beside the data (e.g. the demo pool's job id) */
  getMeta (key: string): Promise<string | undefined>
  setMeta (key: string, value: string): Promise<void>
  /** the images index's parameters */
  indexInfo (): IndexInfo
  /** whether the backend can serve now; `reason` says why not */
  health (): Promise<BackendHealth>
  close (): Promise<void>
}

/** What opening a backend checks: the model that writes into it. A different model is refused (409). */
export interface BackendIdentity {
  /** model id from the model folder's config.json */
  modelId: string
  /** embedding dimension */
  dim: number
  /** the model folder, recorded so that a server started with another model can say which to use */
  modelDir?: string
}
