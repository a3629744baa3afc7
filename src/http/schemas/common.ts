/**
 * Shapes shared by every route, and the TypeBox type provider that turns
 * route schemas into handler types (`Static<>` of body, params, querystring, reply).
 */
import { Type, type SchemaOptions, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox'
import type { FastifyTypeProvider } from 'fastify'
import { ID_PATTERN } from '../../core/ids.js'

/** Fastify type provider for @sinclair/typebox schemas. */
export interface TypeBoxProvider extends FastifyTypeProvider {
  validator: this['schema'] extends TSchema ? Static<this['schema']> : unknown
  serializer: this['schema'] extends TSchema ? Static<this['schema']> : unknown
}

/** One item of a several-item request that failed (in an error, every item failed). */
export const FailedItem = Type.Object({
  id: Type.String({ description: 'the id sent for the item, or "" when none was' }),
  status: Type.Literal('failed'),
  code: Type.Optional(Type.String({ description: 'why, as an error code', examples: ['UNSUPPORTED_MEDIA_TYPE'] })),
  error: Type.Optional(Type.String({ description: 'why, in words' })),
  filename: Type.Optional(Type.String({ description: 'the uploaded file name' }))
})

/** Every error the API answers with. */
export const ErrorResponse = Type.Object({
  statusCode: Type.Integer({ description: 'HTTP status code', examples: [400] }),
  code: Type.String({ description: 'stable machine-readable error code, see src/core/errors.ts', examples: ['BAD_REQUEST'] }),
  error: Type.String({ description: 'HTTP reason phrase', examples: ['Bad Request'] }),
  message: Type.String({ description: 'what went wrong, naming the field when a request field is at fault', examples: ['body/k must be >= 1'] }),
  items: Type.Optional(Type.Array(FailedItem, { description: 'only when every item of a several-item request failed (POST /v1/images): each item\'s reason, in request order' }))
}, { $id: 'Error', title: 'Error', description: 'The shape of every error response' })
export type ErrorResponseT = Static<typeof ErrorResponse>

/** The error responses every route may produce, for the `response` map (a reference to the shared `Error` schema). */
export const errorResponses = {
  '4xx': Type.Ref(ErrorResponse),
  '5xx': Type.Ref(ErrorResponse)
} as const

/** Free-form JSON metadata attached to an image or a text. */
export const Metadata = Type.Object({}, {
  additionalProperties: true,
  description: 'free-form JSON object stored with the item and returned with results',
  examples: [{ source: 'holiday-2023', tags: ['beach'] }]
})
export type MetadataT = Static<typeof Metadata>

/** Where an image came from (ImageRecord.source in src/core/types.ts). */
export const ImageSource = Type.Union([Type.String(), Type.Null()], {
  description: 'where the image came from: its path relative to IMPORT_DIR (index jobs, `npm run index`) or the uploaded file\'s name; null when none was recorded (images stored before schema 2)',
  examples: ['holiday-2024/sub/beach.jpg']
})

/** An image or text id, as the storage accepts it (src/core/ids.ts). */
export const ItemId = Type.String({ minLength: 1, maxLength: 128, pattern: ID_PATTERN.source, description: 'item id: 1–128 letters, digits, ".", "_", ":" or "-"; generated when omitted' })

/** `:id` in a URL; lax on purpose, so an id that cannot exist is a 404 rather than a 400. */
export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 512, description: 'the item id' }) })
export type IdParamsT = Static<typeof IdParams>

/** The name of the model that produced a response. */
export const ModelName = Type.String({ description: 'model id from the model folder config.json', examples: ['align-mini-v3'] })

/** A base64 image: plain base64 (standard or URL-safe alphabet) or a data: URL. */
export const Base64Image = Type.String({
  minLength: 1,
  description: 'image bytes (JPEG, PNG, WebP, GIF, AVIF, TIFF) as base64 or a data: URL',
  examples: ['data:image/png;base64,iVBORw0KGgo...']
})

/**
 * One of a few strings, as a JSON Schema `enum`: a wrong value is then one error that lists the
 * allowed values, where a union of literals gives one "must be equal to constant" per literal.
 */
export function StringEnum<const T extends string> (values: readonly T[], options: SchemaOptions = {}): TUnsafe<T> {
  return Type.Unsafe<T>({ ...options, type: 'string', enum: [...values] })
}

/** A binary file part in multipart/form-data (documentation only). */
export const BinaryPart = Type.String({ format: 'binary' })
