/**
 * POST /v1/index-jobs (JSON items/directory, or a multipart upload), GET /v1/index-jobs (newest
 * first, paged), GET and DELETE /v1/index-jobs/:id, POST /v1/index-jobs/:id/resume (cluster mode).
 * The job itself runs in the services; this route only starts, reads and cancels it.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { BadRequestError, NotFoundError } from '../../../../core/errors.js'
import { formLimits, streamFormFiles } from '../../../plugins/multipart.js'
import { errorResponses, type TypeBoxProvider } from '../../../schemas/common.js'
import { DEFAULT_JOBS_PAGE, JobBody, JobCreated, JobForm, JobList, JobListQuery, JobParams, JobView, type JobBodyT } from '../../../schemas/jobs.js'
import type { JobSource } from '../../../../services/types.js'

/** requests whose body is a form, read by the handler as it arrives */
const uploads = new WeakSet<FastifyRequest>()

/** The job source of a JSON request: exactly one of items | directory. */
function toSource (body: JobBodyT): JobSource {
  if ((body.items === undefined) === (body.directory === undefined)) {
    throw new BadRequestError('body must have exactly one of "items" or "directory"')
  }
  if (body.directory !== undefined) return { directory: body.directory, ...(body.idFromPath === true ? { idFromPath: true } : {}) }
  if (body.idFromPath === true) throw new BadRequestError('idFromPath applies to directory jobs only: give each item its own "id" instead')
  return {
    items: (body.items ?? []).map((it) => ({
      path: it.path,
      ...(it.id === undefined ? {} : { id: it.id }),
      ...(it.metadata === undefined ? {} : { metadata: it.metadata })
    }))
  }
}

export default async function indexJobRoutes (app: FastifyInstance): Promise<void> {
  const r = app.withTypeProvider<TypeBoxProvider>()

  r.post('/index-jobs', {
    config: { access: 'write', multipart: true },
    schema: {
      tags: ['index-jobs'],
      summary: 'Start a background indexing job',
      description: 'application/json: `{"directory": "<folder under IMPORT_DIR>", "idFromPath"?: true}` or `{"items": [{"path", "id"?, "metadata"?}]}` with paths relative to IMPORT_DIR. ' +
        'multipart/form-data: up to MAX_JOB_FILES (default 1000) image files, staged under DATA_DIR; fields `id` and `metadata` apply to the file part that follows them. ' +
        'Every image keeps its source: the path relative to IMPORT_DIR, or the uploaded file\'s name. ' +
        'Answers 202 with the job id; poll GET /v1/index-jobs/{id}.',
      security: [{ bearerAuth: [] }],
      body: {
        content: {
          'application/json': { schema: JobBody },
          'multipart/form-data': { schema: JobForm }
        }
      },
      response: { 202: JobCreated, ...errorResponses }
    },
    preValidation: async (request) => {
      if (!request.isMultipart()) return
      // the form is read by the handler, file by file into staging: none of it is held here
      uploads.add(request)
      request.body = {}
    },
    handler: async (request, reply) => {
      const { services, config } = request.server
      let jobId: string
      let files: number | undefined
      if (uploads.has(request)) {
        let n = 0
        // staged as they arrive; the job (and the 202) exists only once every file is committed
        jobId = await services.createUploadJob((async function * () {
          for await (const f of streamFormFiles(request, formLimits(config, config.maxJobFiles))) {
            n++
            yield { bytes: f.bytes, filename: f.filename, ...(f.id === undefined ? {} : { id: f.id }), ...(f.metadata === undefined ? {} : { metadata: f.metadata }) }
          }
        })())
        files = n
      } else {
        jobId = await services.createJob(toSource(request.body as JobBodyT))
      }
      request.log.info({ job: jobId, files }, 'index job created')
      return await reply.code(202).header('location', `/v1/index-jobs/${encodeURIComponent(jobId)}`).send({ jobId })
    }
  })

  r.get('/index-jobs', {
    schema: {
      tags: ['index-jobs'],
      summary: 'List jobs, newest first',
      description: 'Pages of `limit` jobs (default 20, at most 100). Pass the answer\'s `next` as `before` for the next, older page; `next` is null on the last page.',
      querystring: JobListQuery,
      response: { 200: JobList, ...errorResponses }
    }
  }, async (request) => {
    const { limit = DEFAULT_JOBS_PAGE, before } = request.query
    // one more than asked says whether an older page exists
    const found = await request.server.services.listJobs({ limit: limit + 1, ...(before === undefined ? {} : { before }) })
    const jobs = found.slice(0, limit)
    return { jobs, next: found.length > limit ? jobs.at(-1)!.id : null }
  })

  r.get('/index-jobs/:id', {
    schema: {
      tags: ['index-jobs'],
      summary: 'A job\'s progress',
      params: JobParams,
      response: { 200: JobView, ...errorResponses }
    }
  }, async (request) => {
    const job = await request.server.services.getJob(request.params.id)
    if (job === undefined) throw new NotFoundError(`index job "${request.params.id}" not found`)
    return job
  })

  r.delete('/index-jobs/:id', {
    schema: {
      tags: ['index-jobs'],
      summary: 'Cancel a job',
      description: 'Items already indexed stay indexed. Answers the job as it stands after cancelling.',
      security: [{ bearerAuth: [] }],
      params: JobParams,
      response: { 200: JobView, ...errorResponses }
    }
  }, async (request) => {
    const job = await request.server.services.cancelJob(request.params.id)
    if (job === undefined) throw new NotFoundError(`index job "${request.params.id}" not found`)
    return job
  })

  r.post('/index-jobs/:id/resume', {
    schema: {
      tags: ['index-jobs'],
      summary: 'Run a failed job again (cluster mode)',
      description: 'A job that failed (a batch failed every retry) runs again: items already recorded stay, the rest are retried. ' +
        'An upload job keeps its staged files INDEX_FAILED_KEEP (default 7 days) after it failed; after that its remaining items fail "staged upload missing". ' +
        '409 when the job has not failed; 400 in embedded mode. Answers the job as it stands after resuming.',
      security: [{ bearerAuth: [] }],
      params: JobParams,
      response: { 200: JobView, ...errorResponses }
    }
  }, async (request) => {
    const job = await request.server.services.resumeJob(request.params.id)
    if (job === undefined) throw new NotFoundError(`index job "${request.params.id}" not found`)
    request.log.info({ job: job.id }, 'index job resumed')
    return job
  })
}
