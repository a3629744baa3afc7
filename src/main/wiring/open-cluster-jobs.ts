/** Cluster mode's side of the services: the shared index queue in PostgreSQL and this process's worker of it. */
import { ClusterJobs } from '../../jobs/cluster/cluster-jobs.js'
import { IndexQueue } from '../../backends/postgres/queue/pg-index-queue.js'
import { IndexWorker, type BatchEvent } from '../../jobs/cluster/index-worker.js'
import { DEFAULT_INDEX_BATCH_SIZE, DEFAULT_INDEX_RETRY_AFTER_MS } from '../../core/limits.js'
import type { ServicesConfig } from './services-config.js'
import type { Core } from '../../services/core.js'
import { jobIngest } from './open-jobs.js'

/** Jobs queued in PostgreSQL; this process works the queue too unless `config.indexWorker` is false. */
export async function openClusterJobs (core: Core, config: ServicesConfig): Promise<ClusterJobs> {
  const staging = core.backend.staging
  if (staging === undefined) throw new Error(`the ${core.backend.name} backend has no shared upload staging: cluster jobs need PostgreSQL`)
  const queue = await openIndexQueue(core, config)
  const worker = config.indexWorker === false ? undefined : indexWorker(core, config, queue)
  return new ClusterJobs(queue, core.backend.jobs, staging, worker)
}

/** Opens the shared index queue in the backend's database (DATABASE_URL). */
export async function openIndexQueue (core: Core, config: ServicesConfig): Promise<IndexQueue> {
  if (config.database === undefined) throw new Error('the index queue needs DATABASE_URL (PostgreSQL)')
  return await IndexQueue.open({ databaseUrl: config.database.url, retryAfterMs: config.indexRetryAfterMs ?? DEFAULT_INDEX_RETRY_AFTER_MS, logger: core.logger })
}

/** A worker of the shared queue that indexes through `core` (not started yet). */
export function indexWorker (core: Core, config: ServicesConfig, queue: IndexQueue, onBatch?: (e: BatchEvent) => void): IndexWorker {
  const { backend, logger } = core
  if (backend.staging === undefined) throw new Error(`the ${backend.name} backend has no shared upload staging: index workers need PostgreSQL`)
  return new IndexWorker({
    queue,
    jobs: backend.jobs,
    staging: backend.staging,
    ingest: jobIngest(core),
    logger,
    importDir: config.importDir,
    demoPoolDir: config.demoPoolDir,
    batchSize: config.jobBatchSize ?? DEFAULT_INDEX_BATCH_SIZE,
    ...(config.maxFileBytes === undefined ? {} : { maxFileBytes: config.maxFileBytes }),
    ...(onBatch === undefined ? {} : { onBatch })
  })
}
