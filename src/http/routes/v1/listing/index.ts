/**
 * GET /v1/images and GET /v1/texts: what is stored, page by page in id order, with an optional
 * exact-match filter on metadata; DELETE /v1/images?filter= and DELETE /v1/texts?filter=: remove
 * every row the filter matches (e.g. the demo pool: filter={"demo":true}).
 */
import type { FastifyInstance } from 'fastify'
import type { CollectionName, ListedRow } from '../../../../services/types.js'
import { errorResponses, type TypeBoxProvider } from '../../../schemas/common.js'
import { DeleteByFilterQuery, DeletedResponse, ImageList, ListQuery, TextList, type ListQueryT } from '../../../schemas/listing.js'
import { parseFilter } from '../list-filter.js'

export default async function listingRoutes (app: FastifyInstance): Promise<void> {
  const r = app.withTypeProvider<TypeBoxProvider>()

  const description = (what: string): string => `Up to \`limit\` ${what} in id order, after the id \`after\` (the previous page's \`next\`). ` +
    '`filter` (JSON) keeps only those whose metadata matches exactly, e.g. `filter={"demo":true}` for the demo pool.'
  const page = async (collection: CollectionName, query: ListQueryT): Promise<{ rows: ListedRow[], next: string | null }> => {
    const filter = parseFilter(query.filter)
    const rows = await app.services.listRows(collection, { limit: query.limit, ...(query.after === undefined ? {} : { after: query.after }), ...(filter === undefined ? {} : { filter }) })
    return { rows, next: rows.length === query.limit ? rows.at(-1)!.id : null }
  }

  r.get('/images', {
    schema: { tags: ['images'], summary: 'List stored images, page by page', description: description('images'), querystring: ListQuery, response: { 200: ImageList, ...errorResponses } }
  }, async (request) => {
    const { rows, next } = await page('images', request.query)
    return { items: rows.map((row) => ({ id: row.id, metadata: row.metadata, source: row.source ?? null, createdAt: row.createdAt })), next }
  })

  r.get('/texts', {
    schema: { tags: ['texts'], summary: 'List stored texts, page by page', description: description('texts'), querystring: ListQuery, response: { 200: TextList, ...errorResponses } }
  }, async (request) => {
    const { rows, next } = await page('texts', request.query)
    return { items: rows.map((row) => ({ id: row.id, text: row.text ?? '', metadata: row.metadata, createdAt: row.createdAt })), next }
  })

  for (const collection of ['images', 'texts'] as CollectionName[]) {
    r.delete(`/${collection}`, {
      schema: {
        tags: [collection],
        summary: `Delete every stored ${collection === 'images' ? 'image' : 'text'} whose metadata matches \`filter\``,
        description: '`filter` (JSON, at least one key) is required: DELETE /v1/images?filter={"demo":true} removes the demo pool. Answers how many were deleted.',
        security: [{ bearerAuth: [] }],
        querystring: DeleteByFilterQuery,
        response: { 200: DeletedResponse, ...errorResponses }
      }
    }, async (request) => {
      const filter = parseFilter(request.query.filter) ?? {}
      const deleted = await request.server.services.deleteRows(collection, filter)
      request.log.info({ collection, filter, deleted }, 'deleted by filter')
      return { deleted }
    })
  }
}
