import type { DatabaseConfig } from './open-backend.js'
import type { Backend, BackendIdentity } from '../../backends/ports.js'
import type { Encoder, EncoderOptions, ExecutionProvider } from '../../ml/types.js'
import type { Logger } from '../../core/types.js'

/** What `openServices` needs; src/main/config/config.ts maps the environment onto it. */
export interface ServicesConfig {
  /** model folder (config.json, preprocessor_config.json, tokenizer.json, text.onnx, vision.onnx) */
  modelDir: string
  /** runtime data: align-search.db, images.hnsw, texts.hnsw, uploads/ */
  dataDir: string
  /** root under which index jobs may read files */
  importDir: string
  executionProvider: ExecutionProvider
  /** ONNX worker threads */
  encoderWorkers: number
  /** intra-op threads per worker */
  encoderThreads: number
  /** nice value (0–19) of the process that decodes images for index jobs (default DEFAULT_INDEX_JOB_NICE, src/core/limits.ts: 19) */
  indexJobNice?: number
  /** largest decoded image, pixels */
  maxImagePixels: number
  /** HNSW parameters (defaults: DEFAULT_HNSW in src/core/limits.ts) */
  hnsw: { M: number, efConstruction: number, efSearch: number }
  /** index snapshot after this many inserts + deletes */
  checkpointEvery: number
  /** PostgreSQL + pgvector when set (DATABASE_URL); otherwise SQLite + hnswlib in dataDir */
  database?: DatabaseConfig | undefined
  /** folder of demo images queued as an index job on the very first start (may lie outside importDir) */
  demoPoolDir?: string | undefined
  /** loads the encoder (default: src/ml's loadEncoder); tests inject a fake */
  loadEncoder?: (opts: EncoderOptions) => Promise<Encoder>
  /** opens the backend (default: src/backends/open-backend.ts's openBackend); tests wrap it */
  openBackend?: (config: ServicesConfig, identity: BackendIdentity, logger: Logger) => Promise<Backend>
  /** items per index-job batch (default DEFAULT_INDEX_BATCH_SIZE, src/core/limits.ts: 32) */
  jobBatchSize?: number
  /** PostgreSQL only: whether this process also works the shared index queue (default true; false = API only) */
  indexWorker?: boolean
  /** PostgreSQL only: a dead worker's batch is retried by another within this time, ms (default DEFAULT_INDEX_RETRY_AFTER_MS) */
  indexRetryAfterMs?: number
  /** largest file an index job reads, bytes (default 64 MiB) */
  maxFileBytes?: number
  /** PostgreSQL only: how index jobs ride out faults (defaults in src/jobs/cluster and src/backends/postgres/queue) */
  clusterJobs?: Partial<ClusterJobsConfig>
}

/** PostgreSQL only: the fault settings of cluster index jobs (README "Cluster mode: faults") */
export interface ClusterJobsConfig {
  /** INDEX_BATCH_TIMEOUT: a batch still running after this goes back to the queue, ms */
  batchTimeoutMs: number
  /** INDEX_RETRY_LIMIT: retries of a batch or plan before its job fails */
  retryLimit: number
  /** INDEX_RETRY_DELAY: the first retry's delay; each next one about doubles, ms */
  retryDelayMs: number
  /** INDEX_QUEUE_RETENTION: how long a queued message is kept before pg-boss drops it, ms */
  queueRetentionMs: number
  /** INDEX_FAILED_KEEP: how long a failed upload job keeps its staged files (so it can be resumed), ms */
  failedKeepMs: number
  /** STAGING_MAX_BYTES: the most upload bytes staged at once; more answers 507 */
  stagingMaxBytes: number
}
