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
  const encoder = await loadConfiguredEncoder(config, logger)
  const opened: { backend?: Backend, queue?: IndexQueue } = {}
  try {
    opened.backend = await (config.openBackend ?? openBackend)(config, { modelId: encoder.config.modelId, dim: encoder.config.embeddingDim }, logger)
    const core: Core = { encoder, backend: opened.backend, dim: encoder.config.embeddingDim, logger }
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
          await backend.close()
          await encoder.close()
        })()
        await closing
      }
    }
  } catch (err) {
    await opened.queue?.close().catch(() => {})
    await opened.backend?.close().catch(() => {})
    await encoder.close()
    throw err
  }
}
