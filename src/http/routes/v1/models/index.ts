/**
 * GET /v1/models (the active model, the standby one, a switch's progress), POST /v1/models/switch
 * (start a switch), POST /v1/models/swap (swap to the complete standby model: a swap back), DELETE
 * /v1/models/standby (cancel a switch, or delete the previous model's vectors). README "Changing the model".
 */
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { NotFoundError, NotImplementedError } from '../../../../core/errors.js'
import type { ModelService } from '../../../../services/model-switch.js'
import type { Services } from '../../../../services/types.js'
import { errorResponses, type TypeBoxProvider } from '../../../schemas/common.js'
import { ModelsStatus, SwitchBody } from '../../../schemas/models.js'

const modelsOf = (services: Services): ModelService => {
  if (services.models === undefined) throw new NotImplementedError('this server cannot switch models')
  return services.models
}

export default async function modelRoutes (app: FastifyInstance): Promise<void> {
  const r = app.withTypeProvider<TypeBoxProvider>()
  const tags = ['models']
  const security = [{ bearerAuth: [] }]
  const write = { access: 'write' as const }

  r.get('/models', {
    schema: { tags, summary: 'The active model, the standby model and a switch\'s progress', response: { 200: ModelsStatus, ...errorResponses } }
  }, async (request) => await modelsOf(request.server.services).status())

  r.post('/models/switch', {
    config: write,
    schema: {
      tags,
      summary: 'Switch to another model without downtime',
      description: 'Loads the model folder (under MODELS_DIR) beside the serving one, re-embeds every stored image and text into a standby store in the background, ' +
        'and swaps in one atomic step when complete. Searches are answered by the current model throughout. 400 for a folder outside MODELS_DIR or one that breaks the model contract; ' +
        '409 while images lack a source or preview large enough for the new model and `lowResolution` is not given, or while a switch runs. ' +
        'Both backends; on PostgreSQL every API replica and index worker loads the new model from MODELS_DIR (README "Changing the model").',
      security,
      body: SwitchBody,
      response: { 202: ModelsStatus, ...errorResponses }
    }
  }, async (request, reply) => {
    const status = await modelsOf(request.server.services).start(request.body.modelDir, request.body.lowResolution === undefined ? {} : { lowResolution: request.body.lowResolution })
    request.log.info({ to: status.standby?.modelId, active: status.active.modelId }, 'model switch requested')
    return await reply.code(202).send(status)
  })

  r.post('/models/swap', {
    config: write,
    schema: {
      tags,
      summary: 'Swap to the standby model (a swap back)',
      description: 'One atomic step when the standby model has a vector for every image and text; otherwise the missing ones are embedded first, as a short switch.',
      security,
      response: { 200: ModelsStatus, ...errorResponses }
    }
  }, async (request) => await modelsOf(request.server.services).swap())

  r.delete('/models/standby', {
    config: write,
    schema: {
      tags,
      summary: 'Cancel a switch, or delete the previous model\'s vectors',
      security,
      response: { 204: Type.Null({ description: 'deleted' }), ...errorResponses }
    }
  }, async (request, reply) => {
    if (!(await modelsOf(request.server.services).dropStandby())) throw new NotFoundError('there is no standby model')
    return await reply.code(204).send(null)
  })
}
