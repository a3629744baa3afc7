/** POST /v1/embed shapes. */
import { Type, type Static } from '@sinclair/typebox'
import { Base64Image, ModelName } from './common.js'
import { MAX_EMBED_IMAGES, MAX_EMBED_TEXTS, MAX_TEXT_CHARS } from '../../core/limits.js'

export const EmbedBody = Type.Object({
  texts: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: MAX_TEXT_CHARS }), { maxItems: MAX_EMBED_TEXTS })),
  images: Type.Optional(Type.Array(Base64Image, { maxItems: MAX_EMBED_IMAGES }))
}, { additionalProperties: false, title: 'EmbedRequest', description: 'at least one text or image', examples: [{ texts: ['a cat', 'a dog'] }] })
export type EmbedBodyT = Static<typeof EmbedBody>

const Vectors = Type.Array(Type.Array(Type.Number()), { description: 'L2-normalized embeddings, in request order' })
export const EmbedResponse = Type.Object({
  model: ModelName,
  dim: Type.Integer({ description: 'embedding dimension' }),
  texts: Type.Optional(Vectors),
  images: Type.Optional(Vectors)
}, { title: 'EmbedResponse' })
export type EmbedResponseT = Static<typeof EmbedResponse>
