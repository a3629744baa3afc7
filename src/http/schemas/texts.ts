/** /v1/texts shapes. */
import { Type, type Static } from '@sinclair/typebox'
import { ItemId, Metadata } from './common.js'
import { MAX_TEXT_CHARS, MAX_TEXTS_PER_CALL } from '../../core/limits.js'

export const TextsBody = Type.Object({
  texts: Type.Array(Type.Object({
    id: Type.Optional(ItemId),
    text: Type.String({ minLength: 1, maxLength: MAX_TEXT_CHARS }),
    metadata: Type.Optional(Metadata)
  }, { additionalProperties: false }), { minItems: 1, maxItems: MAX_TEXTS_PER_CALL }),
  template: Type.Optional(Type.String({
    minLength: 2,
    maxLength: 200,
    pattern: '\\{\\}',
    description: 'a prompt template with "{}" where each text goes, e.g. the model\'s own (GET /v1/info → model.promptTemplate; align-mini: "an icon of {}"). ' +
      'It shapes each text\'s vector only: the text is what is stored and returned. Default none (the text is encoded as given). ' +
      'The same text with and without a template (or with another one) are different entries.'
  }))
}, { additionalProperties: false, title: 'AddTextsRequest', examples: [{ texts: [{ id: 'cat', text: 'cat', metadata: { lang: 'en' } }], template: 'an icon of {}' }] })
export type TextsBodyT = Static<typeof TextsBody>

export const TextsResponse = Type.Object({
  items: Type.Array(Type.Object({
    id: Type.String({ description: 'the id the text is stored under: for a duplicate, the id of the entry that already holds the same text (and template), whatever id was asked for' }),
    status: Type.Union([Type.Literal('indexed'), Type.Literal('duplicate')])
  }))
}, { title: 'AddTextsResponse' })
export type TextsResponseT = Static<typeof TextsResponse>
