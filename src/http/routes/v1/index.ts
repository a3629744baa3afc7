/**
 * Everything under /v1. Until the model and the index are loaded, every /v1 route
 * answers 503 NOT_READY (after authentication, before the body is read), naming what it waits
 * for: a database that does not answer is the reason then, not the model.
 */
import type { FastifyInstance } from 'fastify'
import { NotReadyError } from '../../../core/errors.js'
import backupRoutes from './backups/index.js'
import classifyRoutes from './classify/index.js'
import embedRoutes from './embed/index.js'
import imageRoutes from './images/index.js'
import indexJobRoutes from './index-jobs/index.js'
import infoRoutes from './info/index.js'
import modelRoutes from './models/index.js'
import searchRoutes from './search/index.js'
import textRoutes from './texts/index.js'
import listingRoutes from './listing/index.js'

export default async function v1Routes (app: FastifyInstance): Promise<void> {
  app.addHook('onRequest', async (request) => {
    const { services } = request.server
    if (services.ready()) return
    // before the services open, health() answers from memory (no query): the reason they wait
    const health = await services.health().catch((err: unknown) => ({ ok: false, reason: (err as Error).message }))
    if (!health.ok && health.reason !== undefined) throw new NotReadyError(`not ready: ${health.reason}`)
    throw new NotReadyError('the model and the index are still loading; retry shortly')
  })
  await app.register(searchRoutes)
  await app.register(imageRoutes)
  await app.register(indexJobRoutes)
  await app.register(textRoutes)
  await app.register(listingRoutes)
  await app.register(embedRoutes)
  await app.register(classifyRoutes)
  await app.register(infoRoutes)
  await app.register(backupRoutes)
  await app.register(modelRoutes)
}
