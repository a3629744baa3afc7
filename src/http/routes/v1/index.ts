/**
 * Everything under /v1. Until the model and the index are loaded, every /v1 route
 * answers 503 NOT_READY (after authentication, before the body is read).
 */
import type { FastifyInstance } from 'fastify'
import { NotReadyError } from '../../../core/errors.js'
import classifyRoutes from './classify/index.js'
import embedRoutes from './embed/index.js'
import imageRoutes from './images/index.js'
import indexJobRoutes from './index-jobs/index.js'
import infoRoutes from './info/index.js'
import searchRoutes from './search/index.js'
import textRoutes from './texts/index.js'
import listingRoutes from './listing/index.js'

export default async function v1Routes (app: FastifyInstance): Promise<void> {
  app.addHook('onRequest', async (request) => {
    if (!request.server.services.ready()) throw new NotReadyError('the model and the index are still loading; retry shortly')
  })
  await app.register(searchRoutes)
  await app.register(imageRoutes)
  await app.register(indexJobRoutes)
  await app.register(textRoutes)
  await app.register(listingRoutes)
  await app.register(embedRoutes)
  await app.register(classifyRoutes)
  await app.register(infoRoutes)
}
