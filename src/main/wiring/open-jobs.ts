/**
 * Chooses who runs index jobs. The embedded SQLite backend: this process (JobRunner). PostgreSQL:
 * the shared index queue in the same database, worked by every process that runs an IndexWorker
 * (`npm run worker`, and `npm start` unless INDEX_WORKER=off).
 */
import type { IndexQueue } from '../../backends/index-queue.js'
import { DEFAULT_INDEX_BATCH_SIZE, DEFAULT_INDEX_RETRY_AFTER_MS } from '../../core/limits.js'
import { ClusterJobs } from '../../jobs/cluster/cluster-jobs.js'
import { IndexWorker, type BatchEvent } from '../../jobs/cluster/index-worker.js'
import { JobRunner, LocalJobs, type IngestFn, type JobExecutor } from '../../jobs/index.js'
import type { Core } from '../../services/core.js'
import { ingestImages } from '../../services/ingest-images.js'
import type { ServicesConfig } from './services-config.js'

/** The ingest path of index jobs: their images decode and encode in the background process, so searches served here keep the CPU. */
function jobIngest (core: Core): IngestFn {
  return async (items, opts) => await ingestImages(core, items, { ...opts, background: true })
}

export async function openJobs (core: Core, config: ServicesConfig): Promise<JobExecutor> {
  const { backend, logger } = core
  if (config.database !== undefined) {
    const staging = clusterStaging(core)
    const queue = await openIndexQueue(core, config)
    const worker = config.indexWorker === false ? undefined : indexWorker(core, config, queue)
    return new ClusterJobs(queue, backend.jobs, staging, worker)
  }
  const runner = new JobRunner({
    jobs: backend.jobs,
    dataDir: config.dataDir,
    logger,
    ingest: jobIngest(core),
    ...(config.jobBatchSize === undefined ? {} : { batchSize: config.jobBatchSize }),
    ...(config.maxFileBytes === undefined ? {} : { maxFileBytes: config.maxFileBytes })
  })
  return new LocalJobs(runner, backend.jobs, config.dataDir, logger)
}

/** Opens the shared index queue in the backend's database (DATABASE_URL); pg-boss is loaded only in cluster mode. */
export async function openIndexQueue (core: Core, config: ServicesConfig): Promise<IndexQueue> {
  if (config.database === undefined) throw new Error('the index queue needs DATABASE_URL (PostgreSQL)')
  const { PgIndexQueue } = await import('../../backends/postgres/queue/pg-index-queue.js')
  return await PgIndexQueue.open({ databaseUrl: config.database.url, retryAfterMs: config.indexRetryAfterMs ?? DEFAULT_INDEX_RETRY_AFTER_MS, logger: core.logger })
}

/** A worker of the shared queue that indexes through `core` (not started yet). */
export function indexWorker (core: Core, config: ServicesConfig, queue: IndexQueue, onBatch?: (e: BatchEvent) => void): IndexWorker {
  return new IndexWorker({
    queue,
    jobs: core.backend.jobs,
    staging: clusterStaging(core),
    ingest: jobIngest(core),
    logger: core.logger,
    importDir: config.importDir,
    demoPoolDir: config.demoPoolDir,
    batchSize: config.jobBatchSize ?? DEFAULT_INDEX_BATCH_SIZE,
    ...(config.maxFileBytes === undefined ? {} : { maxFileBytes: config.maxFileBytes }),
    ...(onBatch === undefined ? {} : { onBatch })
  })
}

function clusterStaging (core: Core): NonNullable<Core['backend']['staging']> {
  const staging = core.backend.staging
  if (staging === undefined) throw new Error(`the ${core.backend.name} backend has no shared upload staging: cluster jobs need PostgreSQL`)
  return staging
}
