/** GET /v1/info: the model, the backend and its index, the counts and the limits. */
import type { FastifyInstance } from 'fastify'
import { errorResponses, type TypeBoxProvider } from '../../../schemas/common.js'
import { InfoResponse } from '../../../schemas/info.js'
import { VERSION } from '../../../plugins/swagger.js'

export default async function infoRoutes (app: FastifyInstance): Promise<void> {
  const r = app.withTypeProvider<TypeBoxProvider>()

  r.get('/info', {
    schema: {
      tags: ['info'],
      summary: 'Model, index and service information',
      response: { 200: InfoResponse, ...errorResponses }
    }
  }, async (request) => {
    const { services, config } = request.server
    const m = services.model
    const stats = await services.stats()
    const standby = services.models === undefined ? null : await services.models.status().then((s) => s.standby, () => null)
    return {
      version: VERSION,
      model: {
        name: m.name,
        modelId: m.modelId,
        dim: m.embeddingDim,
        temperature: m.temperature,
        promptTemplate: m.promptTemplate,
        maxTextLength: m.maxTextLength,
        license: m.license,
        source: m.source
      },
      standby: standby === null ? null : { modelId: standby.modelId, dim: standby.dim, state: standby.state },
      backend: stats.backend,
      counts: { images: stats.images, texts: stats.texts, exact: stats.countsExact },
      index: { ...stats.index, distance: 'cosine' as const },
      executionProvider: config.executionProvider,
      limits: {
        maxUploadBytes: config.maxUploadBytes,
        maxFiles: config.maxFiles,
        maxJobFiles: config.maxJobFiles,
        maxBodyBytes: config.maxBodyBytes
      },
      auth: { writes: config.apiKey !== undefined, reads: config.apiKey !== undefined && config.apiKeyReads }
    }
  })
}
