/**
 * The app over the real services (SQLite backend, job runner) with the fake encoder: for route
 * promises that the fake services cannot keep honestly (paging over stored jobs, the backend's
 * health, what /v1/info reports about the backend).
 */
import { mkdirSync } from 'node:fs'
import type { TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import pino from 'pino'
import { buildApp } from '../../src/http/app.js'
import { openBackend } from '../../src/main/wiring/open-backend.js'
import type { Backend, BackendHealth } from '../../src/backends/ports.js'
import { type Config } from '../../src/main/config/config.js'
import { toServicesConfig } from '../../src/main/wiring/services-config.js'
import { openServices } from '../../src/main/wiring/open-services.js'
import type { Services } from '../../src/services/types.js'
import { testConfig } from './build-app.js'
import { fakeLoadEncoder } from './fake-encoder.js'

export interface RealApp { app: FastifyInstance, services: Services, config: Config }

/** `backend` with health() answered by `health` (everything else passes through) */
export function withHealth (backend: Backend, health: () => Promise<BackendHealth>): Backend {
  return {
    name: backend.name,
    images: backend.images,
    texts: backend.texts,
    jobs: backend.jobs,
    getMeta: async (key) => await backend.getMeta(key),
    setMeta: async (key, value) => { await backend.setMeta(key, value) },
    indexInfo: () => backend.indexInfo(),
    health,
    close: async () => { await backend.close() }
  }
}

/** Builds the app over real services; `wrap` may replace the backend they open. Closed after the test. */
export async function buildRealApp (t: TestContext, env: Record<string, string> = {}, wrap?: (backend: Backend) => Backend): Promise<RealApp> {
  const config = testConfig(env)
  mkdirSync(config.importDir, { recursive: true })
  const services = await openServices({
    ...toServicesConfig(config),
    loadEncoder: fakeLoadEncoder(),
    openBackend: async (c, identity, logger) => {
      const backend = await openBackend(c, identity, logger)
      return wrap === undefined ? backend : wrap(backend)
    }
  }, pino({ level: 'silent' }))
  const app = await buildApp({ config, services, logger: false, web: false, defaultMetrics: false })
  t.after(async () => { await app.close() })
  return { app, services, config }
}
