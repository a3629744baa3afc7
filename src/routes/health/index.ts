/** GET /health (liveness: always 200) and GET /ready (200 once the services are ready, else 503). */
import type { FastifyInstance } from 'fastify'
import { NotReadyError } from '../../errors.js'
import { errorResponses, type TypeBoxProvider } from '../../schemas/common.js'
import { HealthResponse, ReadyResponse } from '../../schemas/info.js'

export default async function healthRoutes (app: FastifyInstance): Promise<void> {
  const r = app.withTypeProvider<TypeBoxProvider>()

  r.get('/health', {
    config: { access: 'public' },
    logLevel: 'warn',
    schema: { tags: ['ops'], summary: 'Liveness: the process answers', response: { 200: HealthResponse } }
  }, async () => ({ status: 'ok' as const }))

  r.get('/ready', {
    config: { access: 'public' },
    logLevel: 'warn',
    schema: { tags: ['ops'], summary: 'Readiness: the model and the index are loaded', response: { 200: ReadyResponse, ...errorResponses } }
  }, async (request) => {
    if (!request.server.services.ready()) throw new NotReadyError('the model and the index are still loading')
    return { status: 'ready' as const }
  })
}
