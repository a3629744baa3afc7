/**
 * POST /v1/search (JSON or multipart/form-data) and GET /v1/search?q=.
 * The route turns request terms into service terms (decoding images, resolving file
 * parts) and times the work; ranking is the services' business.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { BadRequestError } from '../../../../core/errors.js'
import { formLimits, readForm } from '../../../plugins/multipart.js'
import { errorResponses, type TypeBoxProvider } from '../../../schemas/common.js'
import {
  SearchBody, SearchForm, SearchQuerystring, SearchResponse,
  type QueryTermT, type SearchBodyT, type SearchFormT, type SearchResponseT
} from '../../../schemas/search.js'
import type { QueryTerm, SearchHit, Services } from '../../../../services/types.js'
import { decodeBase64Image } from '../decode-image.js'

const KINDS = ['text', 'imageId', 'image', 'vector', 'file'] as const

/** File parts of a multipart search, by part name. */
const uploads = new WeakMap<FastifyRequest, Map<string, Buffer>>()

/** Reads a multipart search: the `query` part becomes the body, files are kept by part name. */
async function readSearchForm (request: FastifyRequest): Promise<void> {
  const config = request.server.config
  const parts = await readForm(request, formLimits(config))
  const files = new Map<string, Buffer>()
  let query: unknown
  for (const part of parts) {
    if (part.kind === 'file') {
      if (files.has(part.name)) throw new BadRequestError(`two file parts are named "${part.name}": file part names must be unique`)
      files.set(part.name, part.bytes)
    } else if (part.name === 'query') {
      if (query !== undefined) throw new BadRequestError('the form has two "query" fields')
      try {
        query = JSON.parse(part.value)
      } catch {
        throw new BadRequestError('form field "query" must hold the search request as JSON')
      }
    } else {
      throw new BadRequestError(`unknown form field "${part.name}": send the request as JSON in a field named "query" and images as file parts`)
    }
  }
  if (query === undefined) throw new BadRequestError('form field "query" is missing: it holds the search request as JSON')
  uploads.set(request, files)
  request.body = { query }
}

/** One request term → one service term. `at` is the term's path, e.g. body/query/0. */
function toTerm (term: QueryTermT, at: string, files: Map<string, Buffer> | undefined, services: Services, maxBytes: number): QueryTerm {
  const given = KINDS.filter((k) => term[k] !== undefined)
  if (given.length !== 1) {
    throw new BadRequestError(`${at} must have exactly one of ${KINDS.join(', ')}${given.length > 1 ? `, got ${given.join(' and ')}` : ''}`)
  }
  const weight = term.weight ?? 1
  if (term.text !== undefined) return { text: term.text, weight }
  if (term.imageId !== undefined) return { imageId: term.imageId, weight }
  if (term.image !== undefined) return { image: decodeBase64Image(term.image, `${at}/image`, maxBytes), weight }
  if (term.vector !== undefined) {
    const dim = services.model.embeddingDim
    if (term.vector.length !== dim) throw new BadRequestError(`${at}/vector must have ${dim} numbers (the model dimension), got ${term.vector.length}`)
    return { vector: term.vector, weight }
  }
  const name = term.file ?? ''
  if (files === undefined) throw new BadRequestError(`${at}/file is only valid in multipart/form-data requests; in JSON send the image as base64 in "image"`)
  const bytes = files.get(name)
  if (bytes === undefined) throw new BadRequestError(`${at}/file names no file part: there is no file part named "${name}"`)
  return { image: bytes, weight }
}

/** Hits as the response schema has them (terms only when explained). */
function toResults (hits: SearchHit[]): SearchResponseT['results'] {
  return hits.map((h) => ({
    id: h.id,
    score: h.score,
    metadata: h.metadata,
    ...(h.source === undefined ? {} : { source: h.source }),
    ...(h.text === undefined ? {} : { text: h.text }),
    ...(h.terms === undefined ? {} : { terms: h.terms })
  }))
}

/** GET's `filter` parameter: JSON text; the service checks what it says */
function parseJsonFilter (text: string): Record<string, unknown> {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new BadRequestError('querystring/filter must be a JSON object, e.g. {"album":"holiday"}; it is not valid JSON')
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new BadRequestError('querystring/filter must be a JSON object, e.g. {"album":"holiday"}')
  return parsed as Record<string, unknown>
}

const elapsedMs = (start: number): number => Math.round((performance.now() - start) * 10) / 10

export default async function searchRoutes (app: FastifyInstance): Promise<void> {
  const r = app.withTypeProvider<TypeBoxProvider>()

  r.post('/search', {
    config: { access: 'read', multipart: true },
    schema: {
      tags: ['search'],
      summary: 'Search images (or texts) with weighted text, image and vector terms',
      description: 'Each term is embedded and L2-normalized, multiplied by its weight (negative weights subtract), summed, and normalized again; the index returns the k nearest items by cosine similarity. ' +
        'Images named by `imageId` terms are left out of the results unless `includeQueryImages` is true. ' +
        'Send application/json, or multipart/form-data with the JSON in a part named "query" and image files as other parts, referenced from terms as `{"file": "<part name>"}`.',
      body: {
        content: {
          'application/json': { schema: SearchBody },
          'multipart/form-data': { schema: SearchForm }
        }
      },
      response: { 200: SearchResponse, ...errorResponses }
    },
    preValidation: async (request) => {
      if (request.isMultipart()) await readSearchForm(request)
    },
    handler: async (request) => {
      const start = performance.now()
      const { services, metrics, config } = request.server
      const files = uploads.get(request)
      const body = files === undefined ? request.body as SearchBodyT : (request.body as SearchFormT).query
      const at = files === undefined ? 'body/query' : 'body/query/query'
      const convert = (): QueryTerm[] => body.query.map((t, i) => toTerm(t, `${at}/${i}`, files, services, config.maxUploadBytes))
      // only base64 decoding is worth a "decode" observation
      const query = body.query.some((t) => t.image !== undefined) ? await metrics.time('decode', convert) : convert()
      const hits = await metrics.time('search', () => services.search({
        query,
        target: body.target ?? 'images',
        k: body.k ?? 10,
        ...(body.minScore === undefined ? {} : { minScore: body.minScore }),
        ...(body.filter === undefined ? {} : { filter: body.filter as Record<string, unknown> }),
        explain: body.explain ?? false,
        includeQueryImages: body.includeQueryImages ?? false
      }))
      return { results: toResults(hits), model: services.model.modelId, tookMs: elapsedMs(start) }
    }
  })

  r.get('/search', {
    schema: {
      tags: ['search'],
      summary: 'Text → image search',
      description: 'Shorthand for POST /v1/search with one text term and target "images".',
      querystring: SearchQuerystring,
      response: { 200: SearchResponse, ...errorResponses }
    }
  }, async (request) => {
    const start = performance.now()
    const { services, metrics } = request.server
    const { q, k, minScore, filter } = request.query
    const hits = await metrics.time('search', () => services.search({
      query: [{ text: q, weight: 1 }],
      target: 'images',
      k: k ?? 10,
      ...(minScore === undefined ? {} : { minScore }),
      ...(filter === undefined ? {} : { filter: parseJsonFilter(filter) })
    }))
    return { results: toResults(hits), model: services.model.modelId, tookMs: elapsedMs(start) }
  })
}
