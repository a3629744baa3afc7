/**
 * Decorates `app.services` with the services it is given (src/main/wiring opens them; tests inject
 * fakes) and closes them when the app closes, which checkpoints the index.
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { NotReadyError } from '../../core/errors.js'
import { SERVICE_CALLS, type ServiceCall, type Services } from '../../services/types.js'
import type { HttpConfig } from '../http-config.js'

declare module 'fastify' {
  interface FastifyInstance {
    services: Services
    config: HttpConfig
  }
}

export interface ServicesPluginOptions {
  config: HttpConfig
  /** the opened services; `'none'` registers a stub that is never ready (used to export the OpenAPI spec) */
  services: Services | 'none'
  /** close the services when the app closes (default true) */
  closeServices?: boolean
}
/** A Services stand-in that is never ready: every call answers 503. */
export function unavailableServices (): Services {
  const fail = async (): Promise<never> => { throw new NotReadyError('services are not available') }
  const calls = Object.fromEntries(SERVICE_CALLS.map((name) => [name, fail])) as unknown as Pick<Services, ServiceCall>
  return {
    ...calls,
    model: { name: 'unavailable', modelId: 'unavailable', embeddingDim: 0, maxTextLength: 0, temperature: 1, promptTemplate: '{}', usesTokenTypeIds: false, license: '', source: '' },
    ready: () => false,
    health: async () => ({ ok: false, reason: 'services are not available' }),
    close: async () => {}
  }
}

export default fp(async function servicesPlugin (app: FastifyInstance, opts: ServicesPluginOptions) {
  app.decorate('config', opts.config)
  const services = opts.services === 'none' ? unavailableServices() : opts.services
  app.decorate('services', services)
  app.addHook('onClose', async () => {
    if (opts.closeServices === false) return
    app.log.info('closing services')
    await services.close()
  })
}, { name: 'services' })
