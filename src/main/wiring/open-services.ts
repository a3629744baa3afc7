/**
 * Opens the services the way the server, the CLI and the benchmarks use them: the encoder
 * (src/ml), the backend chosen by the config, the job runner chosen likewise, the demo pool on a
 * first start, and the Services facade over them (src/services/services-facade.ts).
 */
import type { Backend } from '../../backends/ports.js'
import type { Logger } from '../../core/types.js'
import { queueDemoPool } from '../../services/demo-pool.js'
import type { Core, KeepOptions } from '../../services/core.js'
import { servicesFacade } from '../../services/services-facade.js'
import type { Services } from '../../services/types.js'
import { loadConfiguredEncoder } from './load-encoder.js'
import { backendKind, openBackend } from './open-backend.js'
import { openJobs } from './open-jobs.js'
import { openBackupService } from '../../services/backups.js'
import { openWhenReachable } from './open-when-reachable.js'
import type { ServicesConfig } from './services-config.js'
import path from 'node:path'
import { ModelSwitcher, unsupportedModels, type ModelService } from '../../services/model-switch.js'

/**
 * Loads the model, opens the backend (refusing one built by another model, ConflictError 409),
 * resumes unfinished index jobs and, on the very first start, queues the demo pool. Resolves when
 * search is ready.
 */
export async function openServices (config: ServicesConfig, logger: Logger): Promise<Services> {
  let encoder = await loadConfiguredEncoder(config, logger)
  let backend: Backend
  try {
    backend = await (config.openBackend ?? openBackend)(config, { modelId: encoder.config.modelId, dim: encoder.config.embeddingDim, modelDir: recordedModelDir(config) }, logger)
  } catch (err) {
    await encoder.close()
    // MODEL_DIR names the standby model of a switch (the previous model, or the one being switched
    // to): the data's record wins, as it does on PostgreSQL; the message says so
    const follow = (err as { activeModelDir?: unknown }).activeModelDir
    if (typeof follow !== 'string' || config.modelsDir === undefined) throw err
    logger.warn({ reason: (err as Error).message, following: follow }, 'MODEL_DIR names the standby model: serving the data\'s active model instead')
    const followed = { ...config, modelDir: path.resolve(config.modelsDir, follow) }
    encoder = await loadConfiguredEncoder(followed, logger)
    try {
      backend = await (config.openBackend ?? openBackend)(followed, { modelId: encoder.config.modelId, dim: encoder.config.embeddingDim, modelDir: follow }, logger)
    } catch (again) {
      await encoder.close()
      throw again
    }
  }
  const core: Core = {
    encoder,
    backend,
    dim: encoder.config.embeddingDim,
    logger,
    keep: keepOptions(config)
  }
  try {
    const services = await startServices(core, config)
    // the counts /v1/info shows: the planner's estimate on a large PostgreSQL table, not a count(*) that reads it all
    const { images, texts, countsExact } = await services.stats()
    logger.info({ model: encoder.config.modelId, dim: core.dim, provider: encoder.provider, backend: backend.name, images, texts, countsExact }, 'services ready')
    return services
  } catch (err) {
    await backend.close().catch(() => {})
    await encoder.close()
    throw err
  }
}

/** What ingest keeps for re-embedding with another model (PREVIEW_SIZE, PREVIEW_FORMAT, KEEP_ORIGINALS), and where sources are looked up. */
export function keepOptions (config: ServicesConfig): KeepOptions {
  return {
    preview: config.preview ?? { size: 320, format: 'auto' },
    originals: config.keepOriginals ?? 'none',
    sourceRoots: [config.importDir, ...(config.demoPoolDir === undefined ? [] : [config.demoPoolDir])]
  }
}

async function startServices (core: Core, config: ServicesConfig): Promise<Services> {
  const jobs = await openJobs(core, config)
  const background = new Set<Promise<unknown>>()
  const closed = { value: false }
  try {
    if (config.demoPoolDir !== undefined && config.demoPoolDir !== '') await queueDemoPool(core, jobs, config.demoPoolDir, background, closed)
    await jobs.start()
  } catch (err) {
    closed.value = true
    await jobs.close().catch(() => {})
    throw err
  }
  const backups = openBackupService(core.backend, core.logger, { everyMs: config.backupEveryMs, keep: config.backupKeep ?? 7 })
  const models = await openModelSwitcher(core, config)
  return servicesFacade(core, jobs, { importDir: config.importDir, background, closed, backups, models })
}

/** MODEL_DIR as the backend records it: relative to MODELS_DIR when under it (what a switch names), else absolute. */
function recordedModelDir (config: ServicesConfig): string {
  if (config.modelsDir === undefined) return config.modelDir
  const rel = path.relative(config.modelsDir, config.modelDir)
  return rel === '' || rel.startsWith('..') || path.isAbsolute(rel) ? config.modelDir : rel
}

/** Model switches where the backend keeps a standby model (the embedded one); resumes a switch left running. */
async function openModelSwitcher (core: Core, config: ServicesConfig): Promise<ModelService> {
  const slots = core.backend.models
  if (slots === undefined || config.modelsDir === undefined) return unsupportedModels(core.backend.name)
  const switcher = new ModelSwitcher(core, slots, {
    modelsDir: config.modelsDir,
    loadEncoder: async (modelDir) => await loadConfiguredEncoder({ ...config, modelDir }, core.logger),
    sourceRoots: core.keep?.sourceRoots ?? [config.importDir],
    // a replica that does index work embeds a switch's batches too, where another process leads it
    helps: config.indexWorker !== false,
    ...(config.jobBatchSize === undefined ? {} : { batchSize: config.jobBatchSize })
  })
  await switcher.resume()
  return switcher
}

/**
 * The server's services. Embedded: opened before the server listens. PostgreSQL: returned at once,
 * answering 503 until the database answers (open-when-reachable.ts); `onFatal` gets an error that
 * waiting will not fix.
 */
export async function openServerServices (config: ServicesConfig, logger: Logger, onFatal: (err: unknown) => void): Promise<Services> {
  const backend = backendKind(config)
  logger.info({ modelDir: config.modelDir, backend, ...(backend === 'sqlite' ? { dataDir: config.dataDir } : {}) }, 'opening services')
  if (backend === 'sqlite') return await openServices(config, logger)
  return openWhenReachable(async () => await openServices(config, logger), { logger, onFatal })
}
