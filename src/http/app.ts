/**
 * The root Fastify plugin: registers the plugins and the routes. `buildOptions` is shared
 * by the server and the tests so both validate and parse exactly alike; `buildApp` builds
 * a ready instance over the services it is given (or a never-ready stub).
 */
import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { HttpConfig } from './http-config.js'
import authPlugin from './plugins/auth.js'
import errorsPlugin, { renderFrameworkError } from './plugins/errors.js'
import metricsPlugin from './plugins/metrics.js'
import multipartPlugin from './plugins/multipart.js'
import securityPlugin from './plugins/security.js'
import servicesPlugin from './plugins/services.js'
import swaggerPlugin from './plugins/swagger.js'
import { buildValidatorFactory, formatSchemaErrors } from './plugins/validation.js'
import healthRoutes from './routes/health/index.js'
import metricsRoutes from './routes/metrics/index.js'
import v1Routes from './routes/v1/index.js'
import webRoutes from './routes/web/index.js'
import type { Services } from '../services/types.js'

export interface AppOptions {
  config: HttpConfig
  /** the opened services (src/main/wiring); `'none'` → a never-ready stub (spec export) */
  services: Services | 'none'
  /** close the services with the app (default true) */
  closeServices?: boolean
  /** register the browser page from src/http/routes/web (default true; off in route tests and the spec export) */
  web?: boolean
  /** collect the process metrics (default true) */
  defaultMetrics?: boolean
}

/** Fastify server options shared by the server and the tests. */
export function buildOptions (config: HttpConfig): FastifyServerOptions {
  return {
    bodyLimit: config.maxBodyBytes,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    // opening the services loads both ONNX towers and the index: seconds for align-mini on a busy
    // 2-core machine, far more for a 700 MB ALIGN export, so Fastify's 10 s default is too short
    pluginTimeout: 300_000,
    // an oversized id is a 404, not a router error
    routerOptions: { maxParamLength: 512, ignoreTrailingSlash: true },
    schemaController: { compilersFactory: { buildValidator: buildValidatorFactory() } },
    schemaErrorFormatter: formatSchemaErrors,
    frameworkErrors: renderFrameworkError
  }
}

/** The root plugin (not encapsulated: its decorators, such as `services` and `swagger`, are visible to the caller). */
async function app (instance: FastifyInstance, opts: AppOptions): Promise<void> {
  const { config } = opts
  // JSON and multipart only: anything else is 415 rather than a confusing validation error
  instance.removeContentTypeParser('text/plain')

  await instance.register(errorsPlugin)
  await instance.register(metricsPlugin, { defaultMetrics: opts.defaultMetrics ?? true })
  await instance.register(securityPlugin, { config })
  await instance.register(authPlugin, { apiKey: config.apiKey, apiKeyReads: config.apiKeyReads })
  await instance.register(multipartPlugin, { config })
  await instance.register(swaggerPlugin)
  await instance.register(servicesPlugin, {
    config,
    services: opts.services,
    ...(opts.closeServices === undefined ? {} : { closeServices: opts.closeServices })
  })

  await instance.register(healthRoutes)
  await instance.register(metricsRoutes)
  await instance.register(v1Routes, { prefix: '/v1' })

  // the browser page at / (src/http/routes/web, owned by the page)
  if (opts.web ?? true) await instance.register(webRoutes)
}

const appPlugin = fp(app, { name: 'align-search' })
export default appPlugin

/**
 * Builds a ready app with `buildOptions(config)`. Pass `logger: false` in tests,
 * or a pino instance (the server does).
 */
export async function buildApp (opts: AppOptions & { logger?: FastifyBaseLogger | false }): Promise<FastifyInstance> {
  const { logger, ...appOpts } = opts
  const instance = Fastify({
    ...buildOptions(opts.config),
    ...(logger === undefined || logger === false ? { logger: false } : { loggerInstance: logger })
  })
  try {
    await instance.register(appPlugin, appOpts)
    await instance.ready()
  } catch (err) {
    await instance.close().catch(() => {})
    throw err
  }
  return instance as unknown as FastifyInstance
}
