/** GET /v1/images and GET /v1/texts (pages in id order) and the delete by filter beside them. */
import { Type, type Static } from '@sinclair/typebox'
import { ImageSource, Metadata } from './common.js'

/** limit per page: default and most */
export const LIST_DEFAULT_LIMIT = 100
export const LIST_MAX_LIMIT = 1000

const FilterParam = Type.String({
  minLength: 2,
  maxLength: 4096,
  description: 'a JSON object: exact match on top-level metadata keys (strings, numbers, booleans), all must match, as a search\'s `filter`',
  examples: ['{"demo":true}', '{"album":"pets"}']
})

export const ListQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: LIST_MAX_LIMIT, default: LIST_DEFAULT_LIMIT, description: 'rows per page' }),
  after: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'the cursor: the `next` of the previous page' })),
  filter: Type.Optional(FilterParam)
}, { additionalProperties: false })
export type ListQueryT = Static<typeof ListQuery>

export const DeleteByFilterQuery = Type.Object({ filter: FilterParam }, { additionalProperties: false })
export type DeleteByFilterQueryT = Static<typeof DeleteByFilterQuery>

export const DeletedResponse = Type.Object({ deleted: Type.Integer({ description: 'how many were deleted' }) }, { title: 'DeletedByFilter' })

const Next = Type.Union([Type.String(), Type.Null()], { description: 'pass as `after` for the next page; null on the last page' })

export const ImageList = Type.Object({
  items: Type.Array(Type.Object({ id: Type.String(), metadata: Metadata, source: ImageSource, createdAt: Type.String({ format: 'date-time' }) })),
  next: Next
}, { title: 'ImageList' })

export const TextList = Type.Object({
  items: Type.Array(Type.Object({ id: Type.String(), text: Type.String(), metadata: Metadata, createdAt: Type.String({ format: 'date-time' }) })),
  next: Next
}, { title: 'TextList' })
