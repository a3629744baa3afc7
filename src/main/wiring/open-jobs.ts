/**
 * Chooses who runs index jobs. The embedded SQLite backend: this process, as always (JobRunner).
 * PostgreSQL: the shared index queue in the same database, worked by every process that runs an
 * IndexWorker (`npm run worker`, and `npm start` unless INDEX_WORKER=off); see open-cluster-jobs.ts.
 */
import { JobRunner, LocalJobs, type IngestFn, type JobExecutor } from '../../jobs/index.js'
import type { ServicesConfig } from './services-config.js'
import type { Core } from '../../services/core.js'
import { ingestImages } from '../../services/ingest-images.js'

/** The ingest path of index jobs: their images decode and encode in the background process, so searches served here keep the CPU. */
export function jobIngest (core: Core): IngestFn {
  return async (items, opts) => await ingestImages(core, items, { ...opts, background: true })
}

export async function openJobs (core: Core, config: ServicesConfig): Promise<JobExecutor> {
  const { backend, logger } = core
  if (config.database !== undefined && backend.staging !== undefined) {
    // loaded only when chosen, so the embedded default never loads pg-boss
    const { openClusterJobs } = await import('./open-cluster-jobs.js')
    return await openClusterJobs(core, config)
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
