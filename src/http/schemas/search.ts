/** POST/GET /v1/search shapes. */
import { Type, type Static } from '@sinclair/typebox'
import { MAX_K, MAX_QUERY_TERMS, MAX_TEXT_CHARS } from '../../core/limits.js'
import { MAX_FILTER_DEPTH } from '../../core/metadata-filter.js'
import { Base64Image, BinaryPart, ImageSource, Metadata, ModelName, StringEnum } from './common.js'

/**
 * One query term. Exactly one of text | imageId | image | vector | file must be given
 * (checked by the route so the error names the term). One flat object rather than a
 * union, so a validation error names the offending property (e.g. body/query/0/weight).
 */
export const QueryTerm = Type.Object({
  text: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_TEXT_CHARS, description: 'text to embed' })),
  imageId: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'id of an indexed image whose embedding is used' })),
  image: Type.Optional({ ...Base64Image, description: 'an image as base64 or a data: URL' }),
  vector: Type.Optional(Type.Array(Type.Number(), { minItems: 1, maxItems: 8192, description: 'a raw embedding; its length must equal the model dimension' })),
  file: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'multipart/form-data only: the name of the file part holding the image' })),
  weight: Type.Optional(Type.Number({ minimum: -100, maximum: 100, default: 1, description: 'weight of this term in the combined query vector; negative weights subtract a concept' }))
}, {
  additionalProperties: false,
  description: 'exactly one of text, imageId, image, vector (or file in multipart requests), with an optional weight',
  examples: [{ text: 'a cat' }, { imageId: 'img_1', weight: 0.5 }, { text: 'dog', weight: -0.3 }]
})
export type QueryTermT = Static<typeof QueryTerm>

/**
 * The metadata filter (src/core/metadata-filter.ts): checked by the search service, whose 400 names
 * the bad part in words, rather than by a schema whose union errors would list every branch.
 */
export const SearchFilter = Type.Unknown({
  description: 'metadata filter: `{"key": value}` matches exactly (several keys must all match); per key an object of operators ' +
    '`$eq`, `$ne`, `$in`, `$nin` (string, number or boolean values), `$gt`, `$gte`, `$lt`, `$lte` (a number, or an ISO-8601 date string: ' +
    'the stored value must be of the same kind, and dates compare as UTC instants; no offset means UTC) and `$exists` (true/false); ' +
    '`$and` / `$or`: arrays of filters, nested at most ' + String(MAX_FILTER_DEPTH) + ' levels. `$ne` and `$nin` also match items without the key.',
  examples: [{ album: 'holiday' }, { album: { $in: ['holiday', 'family'] }, taken: { $gte: '2020-01-01' } }, { $or: [{ camera: 'x100' }, { iso: { $lt: 400 } }] }]
})

export const SearchBody = Type.Object({
  query: Type.Array(QueryTerm, { minItems: 1, maxItems: MAX_QUERY_TERMS, description: 'query terms; their weighted, normalized embeddings are summed' }),
  target: Type.Optional(StringEnum(['images', 'texts'], { default: 'images', description: 'search indexed images or indexed texts' })),
  k: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_K, default: 10, description: 'number of results' })),
  minScore: Type.Optional(Type.Number({ minimum: -1, maximum: 1, description: 'drop results whose cosine similarity is below this' })),
  filter: Type.Optional(SearchFilter),
  explain: Type.Optional(Type.Boolean({ default: false, description: 'return each term\'s similarity with every result' })),
  includeQueryImages: Type.Optional(Type.Boolean({
    default: false,
    description: 'target "images": also return the images that `imageId` terms name. By default they are left out, since each matches itself best (the results still hold k images when k others exist)'
  }))
}, { additionalProperties: false, title: 'SearchRequest' })
export type SearchBodyT = Static<typeof SearchBody>

/** multipart/form-data: a `query` part holding the JSON body, plus image file parts referenced by {"file": "<part name>"}. */
export const SearchForm = Type.Object({
  query: { ...SearchBody, description: 'the search request as JSON (same shape as the application/json body)' }
}, {
  additionalProperties: BinaryPart,
  description: 'a part named "query" holds the JSON request; every other part is an image file that query terms reference as `{"file": "<part name>"}`'
})
export type SearchFormT = Static<typeof SearchForm>

export const SearchQuerystring = Type.Object({
  q: Type.String({ minLength: 1, maxLength: MAX_TEXT_CHARS, description: 'text query' }),
  k: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_K, default: 10, description: 'number of results' })),
  minScore: Type.Optional(Type.Number({ minimum: -1, maximum: 1 })),
  filter: Type.Optional(Type.String({ minLength: 2, maxLength: 8192, description: 'the metadata filter as JSON (the same language as the POST body\'s `filter`), e.g. {"album":"holiday"}' }))
}, { additionalProperties: false })
export type SearchQuerystringT = Static<typeof SearchQuerystring>

export const SearchHit = Type.Object({
  id: Type.String(),
  score: Type.Number({ description: 'cosine similarity with the combined query vector' }),
  metadata: Metadata,
  source: Type.Optional({ ...ImageSource, description: `target "images" only: ${ImageSource.description ?? ''}` }),
  text: Type.Optional(Type.String({ description: 'the indexed text (target "texts" only)' })),
  terms: Type.Optional(Type.Array(Type.Number(), { description: 'explain only: cosine similarity with each query term, in order' }))
})

export const SearchResponse = Type.Object({
  results: Type.Array(SearchHit),
  model: ModelName,
  tookMs: Type.Number({ description: 'server time spent on the search, milliseconds' })
}, { title: 'SearchResponse' })
export type SearchResponseT = Static<typeof SearchResponse>
