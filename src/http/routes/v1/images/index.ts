/**
 * POST /v1/images (multipart), GET /v1/images/:id, GET /v1/images/:id/thumbnail,
 * DELETE /v1/images/:id.
 */
import { createHash } from 'node:crypto'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { BadRequestError, NotFoundError } from '../../../../core/errors.js'
import { filesWithFields, formLimits, readForm, type FormFile } from '../../../plugins/multipart.js'
import { IdParams, errorResponses, type TypeBoxProvider } from '../../../schemas/common.js'
import { ImageRecord, ImagesForm, ImagesResponse, Thumbnail, type ImagesResponseT } from '../../../schemas/images.js'
import { allFailedError } from './all-failed.js'

const uploads = new WeakMap<FastifyRequest, FormFile[]>()

export default async function imageRoutes (app: FastifyInstance): Promise<void> {
  const r = app.withTypeProvider<TypeBoxProvider>()

  r.post('/images', {
    config: { access: 'write', multipart: true },
    schema: {
      tags: ['images'],
      summary: 'Index up to MAX_FILES images',
      description: 'multipart/form-data with up to MAX_FILES (default 64) image file parts; more answers 413. ' +
        'Optional fields `id` and `metadata` (a JSON object) apply to the file part that FOLLOWS them: send id, metadata, file, id, metadata, file, … ' +
        'Answers 200 with one item per file in request order: indexed, duplicate (same bytes already stored; the stored id is returned, whatever `id` the request gave) or failed (with the reason). ' +
        'When every file failed, the request failed: it answers the status of their common reason (415 not an image, 413 too large, 400 bad id or metadata, 409 id taken, 507 disk full; ' +
        'different reasons: 400, or the server-side one such as 507 when there is one), in the error shape, with the per-file outcomes in `items`. A request with no file part answers 400. ' +
        'Each new image keeps its part\'s file name as its `source` (GET /v1/images/{id}, search hits).',
      security: [{ bearerAuth: [] }],
      body: { content: { 'multipart/form-data': { schema: ImagesForm } } },
      response: { 200: ImagesResponse, ...errorResponses }
    },
    preValidation: async (request) => {
      const parts = await readForm(request, formLimits(request.server.config))
      uploads.set(request, filesWithFields(parts))
      request.body = {}
    },
    handler: async (request) => {
      const { services, metrics } = request.server
      const files = uploads.get(request) ?? []
      if (files.length === 0) throw new BadRequestError('no image file in the request: send one or more file parts')
      const results = await metrics.time('encode', () => services.addImages(files.map((f) => ({
        bytes: f.bytes,
        ...(f.id === undefined ? {} : { id: f.id }),
        ...(f.metadata === undefined ? {} : { metadata: f.metadata }),
        ...(f.filename === '' ? {} : { source: f.filename })
      }))))
      const items: ImagesResponseT['items'] = results.map((res, i) => {
        metrics.countIngested(res.status)
        const filename = files[i]?.filename
        return {
          id: res.id,
          status: res.status,
          ...(res.error === undefined ? {} : { error: res.error }),
          ...(res.code === undefined ? {} : { code: res.code }),
          ...(filename === undefined || filename === '' ? {} : { filename })
        }
      })
      for (const item of items) {
        if (item.status === 'failed') request.log.info({ id: item.id, filename: item.filename, error: item.error }, 'image not indexed')
      }
      const failed = allFailedError(items)
      if (failed !== undefined) throw failed
      return { items }
    }
  })

  r.get('/images/:id', {
    schema: {
      tags: ['images'],
      summary: 'An image\'s record',
      description: '`source` says where the image came from: its path relative to IMPORT_DIR (index jobs, `npm run index`) or the uploaded file\'s name; null for images stored before sources were recorded.',
      params: IdParams,
      response: { 200: ImageRecord, ...errorResponses }
    }
  }, async (request) => {
    const record = await request.server.services.getImage(request.params.id)
    if (record === undefined) throw new NotFoundError(`image "${request.params.id}" not found`)
    return record
  })

  r.get('/images/:id/thumbnail', {
    schema: {
      tags: ['images'],
      summary: 'An image\'s thumbnail (WebP)',
      description: 'Cacheable: answers with an ETag and honours If-None-Match (304).',
      params: IdParams,
      response: {
        200: { description: 'the thumbnail', content: { 'image/webp': { schema: Thumbnail } } },
        304: { description: 'not modified', type: 'null' },
        ...errorResponses
      }
    }
  }, async (request, reply) => {
    const thumb = await request.server.services.getThumbnail(request.params.id)
    if (thumb === undefined) throw new NotFoundError(`image "${request.params.id}" not found`)
    const etag = `"${createHash('sha1').update(thumb.bytes).digest('base64url')}"`
    void reply.header('cache-control', 'public, max-age=86400').header('etag', etag)
    if (request.headers['if-none-match'] === etag) return await reply.code(304).send()
    return await reply.type(thumb.contentType).send(thumb.bytes)
  })

  r.delete('/images/:id', {
    schema: {
      tags: ['images'],
      summary: 'Delete an image from the index and storage',
      security: [{ bearerAuth: [] }],
      params: IdParams,
      response: { 204: Type.Null({ description: 'deleted' }), ...errorResponses }
    }
  }, async (request, reply) => {
    if (!(await request.server.services.deleteImage(request.params.id))) throw new NotFoundError(`image "${request.params.id}" not found`)
    return await reply.code(204).send(null)
  })
}
