/** POST /v1/texts and DELETE /v1/texts/:id: texts to search with an image (target "texts"). */
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { NotFoundError } from '../../../../core/errors.js'
import { IdParams, errorResponses, type TypeBoxProvider } from '../../../schemas/common.js'
import { TextsBody, TextsResponse } from '../../../schemas/texts.js'

export default async function textRoutes (app: FastifyInstance): Promise<void> {
  const r = app.withTypeProvider<TypeBoxProvider>()

  r.post('/texts', {
    config: { access: 'write' },
    schema: {
      tags: ['texts'],
      summary: 'Index texts (1 to 2000 characters each, up to 1000 per request)',
      security: [{ bearerAuth: [] }],
      body: TextsBody,
      response: { 200: TextsResponse, ...errorResponses }
    }
  }, async (request) => {
    const { services, metrics } = request.server
    const items = await metrics.time('encode', () => services.addTexts(request.body.texts.map((t) => ({
      text: t.text,
      ...(t.id === undefined ? {} : { id: t.id }),
      ...(t.metadata === undefined ? {} : { metadata: t.metadata })
    })), request.body.template === undefined ? {} : { template: request.body.template }))
    return { items: items.map((it) => ({ id: it.id, status: it.status })) }
  })

  r.delete('/texts/:id', {
    schema: {
      tags: ['texts'],
      summary: 'Delete a text',
      security: [{ bearerAuth: [] }],
      params: IdParams,
      response: { 204: Type.Null({ description: 'deleted' }), ...errorResponses }
    }
  }, async (request, reply) => {
    if (!(await request.server.services.deleteText(request.params.id))) throw new NotFoundError(`text "${request.params.id}" not found`)
    return await reply.code(204).send(null)
  })
}
