/**
 * The root error handler and not-found handler: every error leaves as
 * `{statusCode, code, error, message}`. Framework and plugin errors are mapped onto the
 * codes of src/core/errors.ts; details of unexpected 5xx errors are logged, never sent.
 * A 503 (not ready yet, the database unreachable) carries `Retry-After`, so clients and load
 * balancers wait instead of failing.
 */
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ErrorResponse, type ErrorResponseT } from '../schemas/common.js'

/** The codes defined in src/core/errors.ts: their messages are meant for clients. */
const OWN_CODES = new Set(['BAD_REQUEST', 'UNAUTHORIZED', 'NOT_FOUND', 'CONFLICT', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE', 'RATE_LIMITED', 'NOT_READY', 'BACKEND_UNAVAILABLE', 'INSUFFICIENT_STORAGE', 'NOT_IMPLEMENTED'])

/** seconds a client should wait before retrying a 503: about the time a restarting database or a loading model takes */
export const RETRY_AFTER_S = 5

const CODE_BY_STATUS: Record<number, string> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  406: 'NOT_ACCEPTABLE',
  408: 'REQUEST_TIMEOUT',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  414: 'URI_TOO_LONG',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'RATE_LIMITED',
  431: 'REQUEST_HEADER_FIELDS_TOO_LARGE',
  501: 'NOT_IMPLEMENTED',
  503: 'NOT_READY',
  507: 'INSUFFICIENT_STORAGE'
}

/** Framework/plugin error codes whose status or message we replace. */
const FRAMEWORK: Record<string, { status: number, message?: string }> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415 },
  FST_INVALID_MULTIPART_CONTENT_TYPE: { status: 415, message: 'this endpoint expects multipart/form-data' },
  FST_INVALID_JSON_FIELD_ERROR: { status: 400, message: 'a multipart field declared as application/json is not valid JSON' },
  FST_FILES_LIMIT: { status: 413, message: 'too many files in one request' },
  FST_PARTS_LIMIT: { status: 413, message: 'too many parts in one multipart request' },
  FST_FIELDS_LIMIT: { status: 413, message: 'too many fields in one multipart request' },
  FST_REQ_FILE_TOO_LARGE: { status: 413, message: 'an uploaded file is larger than MAX_UPLOAD_BYTES' },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, message: 'request body is larger than MAX_BODY_BYTES' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, message: 'body must not be empty when Content-Type is application/json' },
  FST_ERR_MAX_PARAM_LENGTH: { status: 414, message: 'a URL path parameter is too long' },
  FST_ERR_BAD_URL: { status: 400, message: 'the URL is not validly percent-encoded' }
}

/** The wire shape of an error, without sending it. `contentType` is the request's, for 415 messages. */
export function renderError (err: FastifyError, contentType?: string): ErrorResponseT {
  const known = err.code !== undefined ? FRAMEWORK[err.code] : undefined
  let status = known?.status ?? (typeof err.statusCode === 'number' ? err.statusCode : 500)
  if (status < 400 || status > 599) status = 500
  const own = err.code !== undefined && OWN_CODES.has(err.code)
  const code = own ? err.code : (err.validation !== undefined ? 'BAD_REQUEST' : (CODE_BY_STATUS[status] ?? (status >= 500 ? 'INTERNAL_ERROR' : 'BAD_REQUEST')))
  let message = known?.message ?? err.message
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    message = `Content-Type "${contentType ?? ''}" is not supported: send application/json (or multipart/form-data where the API documents it)`
  }
  if (status >= 500 && !own) message = 'Internal Server Error'
  // the per-item detail of a request whose every item failed (routes/v1/images/all-failed.ts)
  const items = (err as { items?: ErrorResponseT['items'] }).items
  return { statusCode: status, code, error: STATUS_CODES[status] ?? 'Error', message, ...(Array.isArray(items) ? { items } : {}) }
}

/**
 * For the `frameworkErrors` server option: errors the router raises before any route
 * (bad URL encoding, an over-long parameter) leave in the same shape.
 */
export function renderFrameworkError (err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const body = renderError(err)
  void reply.code(body.statusCode).type('application/json; charset=utf-8').send(body)
}

export default fp(async function errorsPlugin (app: FastifyInstance) {
  // shared by every route's 4xx/5xx responses (and one component in the OpenAPI document)
  app.addSchema(ErrorResponse)
  app.setErrorHandler(function rootErrorHandler (err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
    const body = renderError(err, request.headers['content-type'])
    if (body.statusCode === 503) {
      // expected while a database restarts: one line, not a stack per request
      request.log.warn({ err: { code: err.code, message: err.message, cause: (err.cause as Error | undefined)?.message } }, body.message)
      void reply.header('retry-after', String(RETRY_AFTER_S))
    } else if (body.statusCode >= 500) {
      request.log.error({ err }, 'request failed')
    } else {
      request.log.info({ err: { code: err.code, message: err.message }, statusCode: body.statusCode }, body.message)
    }
    if (body.statusCode === 401) void reply.header('www-authenticate', 'Bearer')
    return reply.code(body.statusCode).type('application/json; charset=utf-8').send(body)
  })

  app.setNotFoundHandler(function notFound (request, reply) {
    const body: ErrorResponseT = { statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: `Route ${request.method} ${request.url.split('?')[0] ?? ''} not found` }
    return reply.code(404).send(body)
  })
}, { name: 'errors' })
