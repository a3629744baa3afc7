/** POST /v1/classify shapes. */
import { Type, type Static } from '@sinclair/typebox'
import { MAX_LABEL_CHARS, MAX_LABELS, MIN_LABELS } from '../../core/limits.js'
import { Base64Image, BinaryPart, ModelName } from './common.js'

export const Label = Type.String({ minLength: 1, maxLength: MAX_LABEL_CHARS })
export const Template = Type.String({ minLength: 2, maxLength: 500, description: 'prompt template that must contain {}, replaced by each label. Defaults to the model\'s template', examples: ['a photo of a {}'] })

export const ClassifyBody = Type.Object({
  image: Base64Image,
  labels: Type.Array(Label, { minItems: MIN_LABELS, maxItems: MAX_LABELS, description: `${MIN_LABELS} to ${MAX_LABELS} labels: the probabilities are a softmax over them` }),
  template: Type.Optional(Template)
}, { additionalProperties: false, title: 'ClassifyRequest', examples: [{ image: 'iVBORw0KGgo...', labels: ['cat', 'dog'], template: 'a photo of a {}' }] })
export type ClassifyBodyT = Static<typeof ClassifyBody>

/**
 * multipart/form-data. The route reads the parts before validation: the `image` file part is
 * required; `labels` is a repeated field, or one field holding a JSON array or comma-separated labels.
 */
export const ClassifyForm = Type.Object({
  image: Type.Optional({ ...BinaryPart, description: 'required: the image file' }),
  labels: Type.Array(Label, { minItems: MIN_LABELS, maxItems: MAX_LABELS, description: `${MIN_LABELS} to ${MAX_LABELS} labels: ` + 'repeat the field per label, or send one field holding a JSON array or comma-separated labels' }),
  template: Type.Optional(Template)
}, { additionalProperties: false })
export type ClassifyFormT = Static<typeof ClassifyForm>

export const ClassifyResponse = Type.Object({
  model: ModelName,
  results: Type.Array(Type.Object({
    label: Type.String(),
    probability: Type.Number({ description: 'softmax over the labels of similarity / temperature' }),
    score: Type.Number({ description: 'cosine similarity of the image and the prompt' })
  }), { description: 'sorted by probability, highest first' })
}, { title: 'ClassifyResponse' })
export type ClassifyResponseT = Static<typeof ClassifyResponse>
