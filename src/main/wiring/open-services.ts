/**
 * Opens the services the way the server, the CLI and the benchmarks use them: the encoder
 * (src/ml), the backend chosen by the config, the job runner chosen likewise, the demo pool on a
 * first start, and the Services facade over them (src/services/services-facade.ts).
 */
import type { Backend } from '../../backends/ports.js'
import type { Logger } from '../../core/types.js'
import { queueDemoPool } from '../../services/demo-pool.js'
import type { Core } from '../../services/core.js'
import { servicesFacade } from '../../services/services-facade.js'
import type { Services } from '../../services/types.js'
import { loadConfiguredEncoder } from './load-encoder.js'
import { backendKind, openBackend } from './open-backend.js'
import { openJobs } from './open-jobs.js'
import { openWhenReachable } from './open-when-reachable.js'
import type { ServicesConfig } from './services-config.js'

/**
 * Loads the model, opens the backend (refusing one built by another model, ConflictError 409),
 * resumes unfinished index jobs and, on the very first start, queues the demo pool. Resolves when
 * search is ready.
 */
export async function openServices (config: ServicesConfig, logger: Logger): Promise<Services> {
  const encoder = await loadConfiguredEncoder(config, logger)
  let backend: Backend
  try {
    backend = await (config.openBackend ?? openBackend)(config, { modelId: encoder.config.modelId, dim: encoder.config.embeddingDim }, logger)
  } catch (err) {
    await encoder.close()
    throw err
  }
  const core: Core = { encoder, backend, dim: encoder.config.embeddingDim, logger }
  try {
    const services = await startServices(core, config)
    const [images, texts] = await Promise.all([backend.images.count(), backend.texts.count()])
    logger.info({ model: encoder.config.modelId, dim: core.dim, provider: encoder.provider, backend: backend.name, images, texts }, 'services ready')
    return services
  } catch (err) {
    await backend.close().catch(() => {})
    await encoder.close()
    throw err
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
  return servicesFacade(core, jobs, { importDir: config.importDir, background, closed })
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
