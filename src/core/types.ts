/**
 * The types every layer speaks: services/, jobs/, storage/ and the backends import them from here,
 * so no lower layer imports services/.
 */
import type { LogFn } from 'pino'

export type Metadata = Record<string, unknown>

/** A metadata filter as JSON (see ./metadata-filter.ts for the language); each backend applies it. */
export type { MetadataFilter } from './metadata-filter.js'

export interface ImageRecord {
  id: string,
  sha256: string,
  width: number,
  height: number,
  metadata: Metadata
  /**
   * where the image came from: its path relative to IMPORT_DIR (index jobs, `npm run index`) or the
   * uploaded file's name; null when nobody recorded one (images stored before schema 2)
   */
  source: string | null
  createdAt: string
}

export type JobStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled'

/**
 * A job as clients see it. `done` = `indexed` + `duplicate` (processed without failure);
 * `duplicates` names, for the first duplicate items, the stored id whose bytes each repeats.
 */
export interface JobView {
  id: string,
  status: JobStatus,
  total: number,
  done: number,
  indexed: number,
  duplicate: number,
  failed: number
  errors: Array<{ item: string, error: string }>,
  duplicates: Array<{ item: string, id: string }>
  /** files a directory job's listing left out, by reason, with the first few paths */
  skipped: JobSkipped
  /** set when the job indexed nothing because its folder held no images (see jobWarning) */
  warning?: string
  /** true for the demo pool's job (queued on a first start), so the page can say what is running */
  demo?: true
  createdAt: string,
  updatedAt: string
}

export type SkipReason = 'not an image' | 'unreadable'
/**
 * What a directory job's listing left out: `notImage` (the extension is not an image's),
 * `unreadable` (no read permission, a dangling symlink, a folder that cannot be listed), and the
 * first MAX_SKIPPED_PATHS of them.
 */
export interface JobSkipped { notImage: number, unreadable: number, paths: Array<{ path: string, reason: SkipReason }> }

/** the first skipped paths a job keeps (the counts stay exact) */
export const MAX_SKIPPED_PATHS = 20

export function noneSkipped (): JobSkipped { return { notImage: 0, unreadable: 0, paths: [] } }

/** whether a job's stored source is the demo pool's (`{demoPool: <folder>}`, see src/main/wiring/open-services.ts) */
export function isDemoJob (source: unknown): boolean {
  return typeof source === 'object' && source !== null && 'demoPool' in source
}

/**
 * The warning a finished directory job carries when its folder gave it nothing to index: empty, or
 * only files that are not images. Derived from the counts, so both backends say the same.
 */
export function jobWarning (job: { kind: string, status: JobStatus, expanded: boolean, total: number, skipped: JobSkipped }): string | undefined {
  if (job.kind !== 'directory' || !job.expanded || job.total > 0) return undefined
  const { notImage, unreadable, paths } = job.skipped
  if (notImage + unreadable === 0) return 'the folder holds no files: nothing was indexed'
  const first = paths.slice(0, 3).map((p) => p.path).join(', ')
  return `the folder holds no images: nothing was indexed (${notImage} not an image by extension, ${unreadable} unreadable; e.g. ${first})`
}

/** The slice of a pino logger the core uses; pino's Logger and Fastify's `app.log` both fit. */
export interface Logger {
  info: LogFn
  warn: LogFn
  error: LogFn
  debug: LogFn
  child: (bindings: Record<string, unknown>) => Logger
}

const TERMINAL: ReadonlySet<JobStatus> = new Set(['done', 'failed', 'cancelled'])
/** true for done, failed and cancelled: a job in one of them never changes status again */
export function isTerminal (status: JobStatus): boolean { return TERMINAL.has(status) }

/** One image to ingest (an upload, or a file an index job read); `source` is stored as the image's source. */
export interface IngestItem { bytes: Buffer, id?: string, metadata?: Metadata, source?: string }
export interface IngestResult { id: string, status: 'indexed' | 'duplicate' | 'failed', error?: string, code?: string }

/** A job source: files under IMPORT_DIR (items or a directory). */
export type JobSource =
  | { items: Array<{ path: string, id?: string, metadata?: Metadata }> }
  | { directory: string, /** each file's id is its path (see idFromPath in src/jobs/sources.ts) */ idFromPath?: boolean }

/** HNSW parameters, for either backend; what each does and its default: DEFAULT_HNSW in src/core/limits.ts. */
export interface HnswParams { M: number, efConstruction: number, efSearch: number }
