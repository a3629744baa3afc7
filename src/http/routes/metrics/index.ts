/** GET /metrics: Prometheus text exposition. */
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'

export default async function metricsRoutes (app: FastifyInstance): Promise<void> {
  app.get('/metrics', {
    config: { access: 'public' },
    logLevel: 'warn',
    schema: {
      tags: ['ops'],
      summary: 'Prometheus metrics',
      description: 'http_request_duration_seconds{route,method,status}, align_stage_seconds{stage="decode"|"encode"|"search"}, align_images_ingested_total{status} and the process metrics.',
      response: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: Type.String() } } } }
    }
  }, async (_request, reply) => {
    const registry = app.metrics.registry
    return await reply.type(registry.contentType).send(await registry.metrics())
  })
}
