/**
 * Decorates `app.services` with the core services (model, index, storage, jobs) and
 * closes them when the app closes (which checkpoints the index).
 * Services are either injected (tests, CLI) or opened from the config.
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { toServicesConfig, type Config } from '../../main/config/config.js'
import { NotReadyError } from '../../core/errors.js'
import { openWhenReachable } from '../../main/wiring/open-when-reachable.js'
import type { Services } from '../../services/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    services: Services
    config: Config
  }
}

export interface ServicesPluginOptions {
  config: Config
  /** an already opened Services instance; `'none'` registers a stub that is never ready (used to export the OpenAPI spec) */
  services?: Services | 'none'
  /** close an injected instance when the app closes (default true; always true for services this plugin opens) */
  closeServices?: boolean
  /** a shared database that answers but cannot be used (another model's data, no vector extension): the server stops */
  onFatal?: (err: unknown) => void
}

/** Opens the core services from src/services (imported on demand: tests with fakes and the spec export never load the model code). */
export async function openCoreServices (config: Config, logger: FastifyInstance['log']): Promise<Services> {
  const { openServices } = await import('../../services/index.js')
  return await openServices(toServicesConfig(config), logger)
}

/** A Services stand-in that is never ready: every call answers 503. */
export function unavailableServices (): Services {
  const fail = (): never => { throw new NotReadyError('services are not available') }
  return {
    model: { name: 'unavailable', modelId: 'unavailable', embeddingDim: 0, maxTextLength: 0, temperature: 1, promptTemplate: '{}', usesTokenTypeIds: false, license: '', source: '' },
    ready: () => false,
    health: async () => ({ ok: false, reason: 'services are not available' }),
    embedTexts: async () => fail(),
    embedImages: async () => fail(),
    addImages: async () => fail(),
    getImage: async () => fail(),
    getThumbnail: async () => fail(),
    deleteImage: async () => fail(),
    addTexts: async () => fail(),
    deleteText: async () => fail(),
    listRows: async () => fail(),
    deleteRows: async () => fail(),
    search: async () => fail(),
    classify: async () => fail(),
    createJob: async () => fail(),
    createUploadJob: async () => fail(),
    getJob: async () => fail(),
    listJobs: async () => fail(),
    cancelJob: async () => fail(),
    stats: async () => fail(),
    close: async () => {}
  }
}

export default fp(async function servicesPlugin (app: FastifyInstance, opts: ServicesPluginOptions) {
  app.decorate('config', opts.config)
  let services: Services
  let close = opts.closeServices ?? true
  if (opts.services === 'none') {
    services = unavailableServices()
  } else if (opts.services !== undefined) {
    services = opts.services
  } else if (opts.config.database !== undefined) {
    // a shared database may be down or still starting: listen now, say why in /ready, keep retrying
    app.log.info({ modelDir: opts.config.modelDir, backend: 'postgres' }, 'opening services')
    services = openWhenReachable(async () => await openCoreServices(opts.config, app.log), {
      logger: app.log,
      onFatal: opts.onFatal ?? ((err) => { app.log.fatal({ err }, 'the services cannot open') })
    })
  } else {
    app.log.info({ modelDir: opts.config.modelDir, dataDir: opts.config.dataDir }, 'opening services')
    services = await openCoreServices(opts.config, app.log)
    close = true
  }
  app.decorate('services', services)
  app.addHook('onClose', async () => {
    if (!close) return
    app.log.info('closing services')
    await services.close()
  })
}, { name: 'services' })
