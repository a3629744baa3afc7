/** The index-job machinery that services and the wiring use: sources, staging, ingest batches, the local runner and the executor port. */
export { runIndexJob, removeStaging, DEFAULT_BATCH_SIZE, type IndexJobDeps, type IndexJobResult, type IngestFn, type IngestJobProgress } from './local/run-index-job.js'
export { JobRunner } from './local/job-runner.js'
export {
  resolveJobSource, idFromPath, walkImages, readJobFile, sanitizeFilename, hasImageExtension,
  IMAGE_EXTENSIONS, MAX_JOB_ITEMS, DEFAULT_MAX_FILE_BYTES, type ResolvedSource
} from './sources.js'
export { stageUploads, removeStaleStaging, stagingDir, uploadItem, piecesOf, UPLOADS_DIR, type UploadFile, type UploadFiles } from './staging.js'
export { LocalJobs, type JobExecutor } from './job-executor.js'
export { ingestBatch, filesUnder, type ReadFiles, type Batch, type BatchCounts } from './ingest-batch.js'
