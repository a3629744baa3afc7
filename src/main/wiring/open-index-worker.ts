/**
 * What `npm run worker` runs: the model and the PostgreSQL backend, and a worker of the shared
 * index queue, with no API. Any number of these, on any machines, share one database's work.
 */
import { openBackend } from './open-backend.js'
import type { Backend, BackendHealth } from '../../backends/ports.js'
import type { BatchEvent, IndexWorker } from '../../jobs/cluster/index-worker.js'
import type { IndexQueue } from '../../backends/index-queue.js'
import type { Logger } from '../../core/types.js'
import type { ServicesConfig } from './services-config.js'
import { loadConfiguredEncoder } from './load-encoder.js'
import type { Core } from '../../services/core.js'
import { indexWorker, openIndexQueue } from './open-jobs.js'
import { ModelSwitcher } from '../../services/model-switch.js'
import { keepOptions } from './open-services.js'
import path from 'node:path'

export interface IndexWorkerProcess {
  readonly worker: IndexWorker
  /** the execution provider the encoder runs on, after any fallback */
  readonly provider: string
  /** whether the database answers (the worker keeps trying while it does not) */
  health: () => Promise<BackendHealth>
  /** Stops claiming work, finishes (or gives back) the batches in hand, and closes everything. */
  close: () => Promise<void>
}

export class WorkerNeedsDatabaseError extends Error {
  constructor () {
    super('npm run worker needs DATABASE_URL: index workers share their queue and their data through PostgreSQL. ' +
      'With the embedded SQLite backend, `npm start` indexes by itself (see "Cluster mode" in the README).')
    this.name = 'WorkerNeedsDatabaseError'
  }
}

/** Opens the encoder, the backend and the queue, and starts working. */
export async function openIndexWorker (config: ServicesConfig, logger: Logger, onBatch?: (e: BatchEvent) => void): Promise<IndexWorkerProcess> {
  if (config.database === undefined) throw new WorkerNeedsDatabaseError()
  let encoder = await loadConfiguredEncoder(config, logger)
  const opened: { backend?: Backend, queue?: IndexQueue, models?: ModelSwitcher } = {}
  try {
    try {
      opened.backend = await (config.openBackend ?? openBackend)(config, { modelId: encoder.config.modelId, dim: encoder.config.embeddingDim }, logger)
    } catch (err) {
      // MODEL_DIR names the standby model of a switch: follow the database's active one, as the server does
      const follow = (err as { activeModelDir?: unknown }).activeModelDir
      if (typeof follow !== 'string' || config.modelsDir === undefined) throw err
      logger.warn({ reason: (err as Error).message, following: follow }, 'MODEL_DIR names the standby model: indexing with the database\'s active model instead')
      await encoder.close()
      const followed = { ...config, modelDir: path.resolve(config.modelsDir, follow) }
      encoder = await loadConfiguredEncoder(followed, logger)
      opened.backend = await (config.openBackend ?? openBackend)(followed, { modelId: encoder.config.modelId, dim: encoder.config.embeddingDim }, logger)
    }
    const core: Core = { encoder, backend: opened.backend, dim: encoder.config.embeddingDim, logger, keep: keepOptions(config) }
    opened.models = await watchModels(core, config)
    opened.queue = await openIndexQueue(core, config)
    const worker = indexWorker(core, config, opened.queue, onBatch)
    worker.start()
    const { backend, queue } = opened as Required<typeof opened>
    let closing: Promise<void> | undefined
    return {
      worker,
      provider: encoder.provider,
      health: async () => await backend.health(),
      close: async () => {
        closing ??= (async () => {
          await worker.close()
          await queue.close()
          await opened.models?.close()
          await backend.close()
          await core.encoder.close()
        })()
        await closing
      }
    }
  } catch (err) {
    await opened.queue?.close().catch(() => {})
    await opened.models?.close().catch(() => {})
    await opened.backend?.close().catch(() => {})
    await encoder.close()
    throw err
  }
}

/**
 * A worker follows the database's model slots (README "Changing the model"): during a switch it
 * loads the new model from MODELS_DIR (the folder the record names), its batches embed with both,
 * and it embeds the switch's batches beside the process that leads it; after a swap it indexes with
 * the new model. Without MODELS_DIR it indexes with MODEL_DIR only.
 */
async function watchModels (core: Core, config: ServicesConfig): Promise<ModelSwitcher | undefined> {
  const slots = core.backend.models
  if (slots === undefined || config.modelsDir === undefined) return undefined
  const switcher = new ModelSwitcher(core, slots, {
    modelsDir: config.modelsDir,
    loadEncoder: async (modelDir) => await loadConfiguredEncoder({ ...config, modelDir }, core.logger),
    sourceRoots: core.keep?.sourceRoots ?? [config.importDir],
    helps: true,
    ...(config.jobBatchSize === undefined ? {} : { batchSize: config.jobBatchSize })
  })
  await switcher.watch()
  return switcher
}
