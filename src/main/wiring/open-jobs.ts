/**
 * Chooses who runs index jobs. The embedded SQLite backend: this process (JobRunner). PostgreSQL:
 * the shared index queue in the same database, worked by every process that runs an IndexWorker
 * (`npm run worker`, and `npm start` unless INDEX_WORKER=off).
 */
import type { IndexQueue } from '../../backends/index-queue.js'
import { DEFAULT_INDEX_BATCH_SIZE, DEFAULT_INDEX_RETRY_AFTER_MS } from '../../core/limits.js'
import { ClusterJobs } from '../../jobs/cluster/cluster-jobs.js'
import { IndexWorker, type BatchEvent, type IndexWorkerDeps } from '../../jobs/cluster/index-worker.js'
import { QUEUES } from '../../backends/index-queue.js'
import { JobRunner, LocalJobs, type IngestFn, type JobExecutor } from '../../jobs/index.js'
import type { Core } from '../../services/core.js'
import { ingestImages } from '../../services/ingest-images.js'
import type { ServicesConfig } from './services-config.js'

/** The ingest path of index jobs: their images decode and encode in the background process, so searches served here keep the CPU. */
function jobIngest (core: Core): IngestFn {
  return async (items, opts) => await ingestImages(core, items, { ...opts, background: true })
}

/** Starts the background process(es) jobIngest will use, as a job starts */
function warmJobIngest (core: Core): () => void {
  return () => {
    core.encoder.warmBackground?.()
    core.standbyEncoder?.warmBackground?.()
  }
}

export async function openJobs (core: Core, config: ServicesConfig): Promise<JobExecutor> {
  const { backend, logger } = core
  if (config.database !== undefined) {
    const staging = clusterStaging(core)
    const queue = await openIndexQueue(core, config)
    const worker = config.indexWorker === false ? undefined : indexWorker(core, config, queue)
    return new ClusterJobs(queue, clusterJobStore(core), staging, worker, logger)
  }
  const runner = new JobRunner({
    jobs: backend.jobs,
    dataDir: config.dataDir,
    logger,
    ingest: jobIngest(core),
    warmUp: warmJobIngest(core),
    ...(config.jobBatchSize === undefined ? {} : { batchSize: config.jobBatchSize }),
    ...(config.maxFileBytes === undefined ? {} : { maxFileBytes: config.maxFileBytes })
  })
  return new LocalJobs(runner, backend.jobs, config.dataDir, logger)
}

/** Opens the shared index queue in the backend's database (DATABASE_URL); pg-boss is loaded only in cluster mode. */
export async function openIndexQueue (core: Core, config: ServicesConfig): Promise<IndexQueue> {
  if (config.database === undefined) throw new Error('the index queue needs DATABASE_URL (PostgreSQL)')
  const { PgIndexQueue } = await import('../../backends/postgres/queue/pg-index-queue.js')
  const c = config.clusterJobs ?? {}
  return await PgIndexQueue.open({
    databaseUrl: config.database.url,
    retryAfterMs: config.indexRetryAfterMs ?? DEFAULT_INDEX_RETRY_AFTER_MS,
    logger: core.logger,
    timeouts: config.database.timeouts,
    ...(c.retryLimit === undefined ? {} : { retryLimit: c.retryLimit }),
    ...(c.retryDelayMs === undefined ? {} : { retryDelaySeconds: c.retryDelayMs / 1000 }),
    ...(c.queueRetentionMs === undefined ? {} : { retentionMinutes: c.queueRetentionMs / 60_000 })
  })
}

/** A worker of the shared queue that indexes through `core` (not started yet). */
export function indexWorker (core: Core, config: ServicesConfig, queue: IndexQueue, onBatch?: (e: BatchEvent) => void): IndexWorker {
  const c = config.clusterJobs ?? {}
  return new IndexWorker({
    queue,
    jobs: clusterJobStore(core),
    ...(c.batchTimeoutMs === undefined ? {} : { batchTimeoutMs: c.batchTimeoutMs }),
    ...(c.failedKeepMs === undefined ? {} : { keepFailedMs: c.failedKeepMs }),
    // test-only (test/cluster): hold each batch between its commit and the queue's acknowledgement, for a SIGKILL to land there
    ...(process.env.ALIGN_TEST_PAUSE_BEFORE_ACK === '1' ? { beforeAcknowledge: pauseBeforeAcknowledge(core) } : {}),
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

function clusterJobStore (core: Core): NonNullable<Core['backend']['clusterJobs']> {
  const jobs = core.backend.clusterJobs
  if (jobs === undefined) throw new Error(`the ${core.backend.name} backend has no shared job rows: cluster jobs need PostgreSQL`)
  return jobs
}

/** never resolves for a batch: the worker logs and waits there until it is killed */
function pauseBeforeAcknowledge (core: Core): NonNullable<IndexWorkerDeps['beforeAcknowledge']> {
  return async (queue, msg) => {
    if (queue !== QUEUES.batch) return
    core.logger.warn({ message: msg.id }, 'index batch paused before acknowledgement')
    await new Promise(() => {})
  }
}

function clusterStaging (core: Core): NonNullable<Core['backend']['staging']> {
  const staging = core.backend.staging
  if (staging === undefined) throw new Error(`the ${core.backend.name} backend has no shared upload staging: cluster jobs need PostgreSQL`)
  return staging
}
