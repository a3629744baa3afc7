/** POST /v1/embed: raw, L2-normalized embeddings of texts and images. */
import type { FastifyInstance } from 'fastify'
import { BadRequestError } from '../../../../core/errors.js'
import { MAX_EMBED_IMAGES, MAX_EMBED_TEXTS } from '../../../../core/limits.js'
import { errorResponses, type TypeBoxProvider } from '../../../schemas/common.js'
import { EmbedBody, EmbedResponse, type EmbedResponseT } from '../../../schemas/embed.js'
import { decodeBase64Image } from '../decode-image.js'

export default async function embedRoutes (app: FastifyInstance): Promise<void> {
  const r = app.withTypeProvider<TypeBoxProvider>()

  r.post('/embed', {
    config: { access: 'read' },
    schema: {
      tags: ['embed'],
      summary: 'Embed texts and/or images',
      description: `Up to ${MAX_EMBED_TEXTS} texts and ${MAX_EMBED_IMAGES} images (base64 or data: URLs). Vectors come back in request order.`,
      body: EmbedBody,
      response: { 200: EmbedResponse, ...errorResponses }
    }
  }, async (request) => {
    const { services, metrics, config } = request.server
    const { texts = [], images = [] } = request.body
    if (texts.length === 0 && images.length === 0) throw new BadRequestError('body must contain at least one of "texts" or "images"')
    const buffers = images.length === 0 ? [] : await metrics.time('decode', () => images.map((img, i) => decodeBase64Image(img, `body/images/${i}`, config.maxUploadBytes)))
    const out: EmbedResponseT = { model: services.model.modelId, dim: services.model.embeddingDim }
    if (texts.length > 0) out.texts = (await metrics.time('encode', () => services.embedTexts(texts))).map((v) => Array.from(v))
    if (buffers.length > 0) out.images = (await metrics.time('encode', () => services.embedImages(buffers))).map((v) => Array.from(v))
    return out
  })
}
