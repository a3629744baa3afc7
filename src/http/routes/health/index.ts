/**
 * GET /health (liveness: always 200) and GET /ready (200 once the services are ready and the
 * backend can serve, else 503 with the reason).
 */
import type { FastifyInstance } from 'fastify'
import { NotReadyError } from '../../../core/errors.js'
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
    schema: { tags: ['ops'], summary: 'Readiness: the model and the index are loaded, and the backend answers', response: { 200: ReadyResponse, ...errorResponses } }
  }, async (request) => {
    const { services } = request.server
    // the backend first: a database that is down is the reason, even while the services wait to open on it;
    // a backend that throws instead of answering is just as unready
    const health = await services.health().catch((err: unknown) => ({ ok: false, reason: (err as Error).message }))
    if (!health.ok) {
      request.log.warn({ reason: health.reason }, 'not ready: the backend cannot serve')
      throw new NotReadyError(`the backend cannot serve: ${health.reason ?? 'no reason given'}`)
    }
    if (!services.ready()) throw new NotReadyError('the model and the index are still loading')
    return { status: 'ready' as const }
  })
}
