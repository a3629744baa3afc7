/** What opening the services needs (ServicesConfig), and how the process's Config maps onto it. */
import type { ClusterJobsConfig, Config, DatabaseConfig } from '../config/config.js'
import type { Backend, BackendIdentity } from '../../backends/ports.js'
import type { Encoder, EncoderOptions, ExecutionProviderSetting, PreviewFormat } from '../../ml/types.js'
import type { Logger } from '../../core/types.js'

/** What `openServices` needs; `toServicesConfig` below fills it from the process's Config. */
export interface ServicesConfig {
  /** model folder (config.json, preprocessor_config.json, tokenizer.json, text.onnx, vision.onnx) */
  modelDir: string
  /** runtime data: align-search.db, images.hnsw, texts.hnsw, uploads/ */
  dataDir: string
  /** root under which index jobs may read files */
  importDir: string
  executionProvider: ExecutionProviderSetting
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
  /** SQLite: where backups are written (default dataDir/backups) */
  backupDir?: string | undefined
  /** SQLite: a scheduled backup every this many ms (undefined: none) */
  backupEveryMs?: number | undefined
  /** scheduled backups kept (default 7) */
  backupKeep?: number
  /** MODELS_DIR: model switches may only name folders under it (default: no switches) */
  modelsDir?: string
  /** what ingest keeps for re-embedding with another model (default: a 320 px preview, JPEG or WebP with alpha, no originals) */
  preview?: { size: number, format: PreviewFormat }
  keepOriginals?: 'none' | 'uploads' | 'all'
  /** PostgreSQL only: how index jobs ride out faults (defaults in src/jobs/cluster and src/backends/postgres/queue) */
  clusterJobs?: Partial<ClusterJobsConfig>
}

/** The part of the configuration the core services take. */
export function toServicesConfig (config: Config): ServicesConfig {
  return {
    modelDir: config.modelDir,
    dataDir: config.dataDir,
    importDir: config.importDir,
    executionProvider: config.executionProvider,
    encoderWorkers: config.encoderWorkers,
    encoderThreads: config.encoderThreads,
    indexJobNice: config.indexJobNice,
    maxImagePixels: config.maxImagePixels,
    hnsw: { ...config.hnsw },
    checkpointEvery: config.checkpointEvery,
    backupDir: config.backupDir,
    backupEveryMs: config.backupEveryMs,
    backupKeep: config.backupKeep,
    database: config.database,
    indexWorker: config.indexWorker,
    jobBatchSize: config.indexBatchSize,
    indexRetryAfterMs: config.indexRetryAfterMs,
    clusterJobs: { ...config.clusterJobs },
    ...(config.demoPoolDir === undefined ? {} : { demoPoolDir: config.demoPoolDir }),
    modelsDir: config.modelsDir,
    preview: { ...config.preview },
    keepOriginals: config.keepOriginals
  }
}
