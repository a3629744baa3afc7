/**
 * POST /v1/backups (write one now), GET /v1/backups (list), GET /v1/backups/:name (download),
 * DELETE /v1/backups/:name. A backup holds the whole pool, so every route needs the write key
 * when API_KEY is set. On PostgreSQL each answers 501 NOT_IMPLEMENTED saying to use pg_dump.
 */
import { createReadStream } from 'node:fs'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { NotFoundError, NotImplementedError } from '../../../../core/errors.js'
import { BackupInfo, BackupList, BackupParams } from '../../../schemas/backups.js'
import { errorResponses, type TypeBoxProvider } from '../../../schemas/common.js'
import type { BackupService } from '../../../../services/backups.js'
import type { Services } from '../../../../services/types.js'

const backupsOf = (services: Services): BackupService => {
  if (services.backups === undefined) throw new NotImplementedError('this server has no backups')
  return services.backups
}

export default async function backupRoutes (app: FastifyInstance): Promise<void> {
  const r = app.withTypeProvider<TypeBoxProvider>()
  const tags = ['backups']
  const security = [{ bearerAuth: [] }]
  const config = { access: 'write' as const }

  r.post('/backups', {
    config,
    schema: {
      tags,
      summary: 'Write a backup now',
      description: 'Writes one consistent backup file under BACKUP_DIR while the server keeps serving and indexing: every image acknowledged before the request is in it, and no part of a batch. ' +
        'Answers 201 with its name, size and counts once the file is complete. One backup at a time (409 while one is written). ' +
        'Restore it with `npm run restore -- <file>` into an empty DATA_DIR. PostgreSQL: 501, use pg_dump.',
      security,
      response: { 201: BackupInfo, ...errorResponses }
    }
  }, async (request, reply) => {
    const info = await backupsOf(request.server.services).create()
    request.log.info({ backup: info.name, bytes: info.bytes, images: info.images }, 'backup written')
    return await reply.code(201).header('location', `/v1/backups/${encodeURIComponent(info.name)}`).send(info)
  })

  r.get('/backups', {
    config,
    schema: { tags, summary: 'List the backups, newest first', security, response: { 200: BackupList, ...errorResponses } }
  }, async (request) => ({ backups: await backupsOf(request.server.services).list() }))

  r.get('/backups/:name', {
    config,
    schema: {
      tags,
      summary: 'Download a backup file',
      description: 'The tar file as written (application/x-tar).',
      security,
      params: BackupParams,
      response: { 200: { content: { 'application/x-tar': { schema: { type: 'string', format: 'binary' } } } }, ...errorResponses }
    }
  }, async (request, reply) => {
    const found = await backupsOf(request.server.services).get(request.params.name)
    if (found === undefined) throw new NotFoundError(`backup "${request.params.name}" not found`)
    return await reply
      .type('application/x-tar')
      .header('content-length', found.info.bytes)
      .header('content-disposition', `attachment; filename="${found.info.name}"`)
      .send(createReadStream(found.file))
  })

  r.delete('/backups/:name', {
    config,
    schema: { tags, summary: 'Delete a backup file', security, params: BackupParams, response: { 204: Type.Null({ description: 'deleted' }), ...errorResponses } }
  }, async (request, reply) => {
    const removed = await backupsOf(request.server.services).remove(request.params.name)
    if (!removed) throw new NotFoundError(`backup "${request.params.name}" not found`)
    return await reply.code(204).send(null)
  })
}
