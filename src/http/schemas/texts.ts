/** /v1/texts shapes. */
import { Type, type Static } from '@sinclair/typebox'
import { ItemId, Metadata } from './common.js'
import { MAX_TEXT_CHARS, MAX_TEXTS_PER_CALL } from '../../core/limits.js'

export const TextsBody = Type.Object({
  texts: Type.Array(Type.Object({
    id: Type.Optional(ItemId),
    text: Type.String({ minLength: 1, maxLength: MAX_TEXT_CHARS }),
    metadata: Type.Optional(Metadata)
  }, { additionalProperties: false }), { minItems: 1, maxItems: MAX_TEXTS_PER_CALL })
}, { additionalProperties: false, title: 'AddTextsRequest', examples: [{ texts: [{ id: 'cat', text: 'a photo of a cat', metadata: { lang: 'en' } }] }] })
export type TextsBodyT = Static<typeof TextsBody>

export const TextsResponse = Type.Object({
  items: Type.Array(Type.Object({
    id: Type.String(),
    status: Type.Union([Type.Literal('indexed'), Type.Literal('duplicate')])
  }))
}, { title: 'AddTextsResponse' })
export type TextsResponseT = Static<typeof TextsResponse>
