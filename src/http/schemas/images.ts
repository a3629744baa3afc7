/** /v1/images shapes. */
import { Type, type Static } from '@sinclair/typebox'
import { BinaryPart, ImageSource, ItemId, Metadata } from './common.js'

/**
 * multipart/form-data for POST /v1/images (documentation; the route reads the parts in order).
 * Fields named `id` and `metadata` apply to the file part that FOLLOWS them.
 */
export const ImagesForm = Type.Object({
  id: Type.Optional({ ...ItemId, description: 'id of the NEXT file part; generated when omitted' }),
  metadata: Type.Optional(Type.String({ description: 'JSON object stored with the NEXT file part', examples: ['{"album":"holiday"}'] })),
  file: Type.Optional({ ...BinaryPart, description: 'an image file; repeat id/metadata/file for each image (the part name of a file is free)' })
}, {
  additionalProperties: BinaryPart,
  description: 'up to MAX_FILES (default 64) image file parts. Optional fields `id` and `metadata` (a JSON object) apply to the file part that follows them, so send them before their file: id, metadata, file, id, metadata, file, …'
})

export const IngestStatus = Type.Union([Type.Literal('indexed'), Type.Literal('duplicate'), Type.Literal('failed')])

export const ImageItemResult = Type.Object({
  id: Type.String({ description: 'the image id (for a duplicate: the id already stored for the same bytes)' }),
  status: IngestStatus,
  error: Type.Optional(Type.String({ description: 'why this item failed' })),
  code: Type.Optional(Type.String({ description: 'error code of a failed item' })),
  filename: Type.Optional(Type.String({ description: 'the uploaded file name' }))
})

export const ImagesResponse = Type.Object({
  items: Type.Array(ImageItemResult, { description: 'one entry per file part, in request order' })
}, { title: 'AddImagesResponse' })
export type ImagesResponseT = Static<typeof ImagesResponse>

export const ImageRecord = Type.Object({
  id: Type.String(),
  sha256: Type.String({ description: 'hex SHA-256 of the original bytes' }),
  width: Type.Integer(),
  height: Type.Integer(),
  metadata: Metadata,
  source: ImageSource,
  createdAt: Type.String({ format: 'date-time' })
}, { title: 'ImageRecord' })
export type ImageRecordT = Static<typeof ImageRecord>

export const Thumbnail = Type.String({ format: 'binary', description: 'a small WebP preview' })
