/**
 * Every error the API can answer with. The response shape is always
 * `{statusCode, code, error, message}`; the root error handler renders these.
 * Every layer below http (core, ml, backends, jobs, services) throws these too: @fastify/error
 * is a plain Error factory and does not pull in the framework.
 */
import createError from '@fastify/error'

export const BadRequestError = createError<[string]>('BAD_REQUEST', '%s', 400)
export const UnauthorizedError = createError('UNAUTHORIZED', 'Missing or invalid API key: send Authorization: Bearer <key>', 401)
export const NotFoundError = createError<[string]>('NOT_FOUND', '%s', 404)
export const ConflictError = createError<[string]>('CONFLICT', '%s', 409)
export const PayloadTooLargeError = createError<[string]>('PAYLOAD_TOO_LARGE', '%s', 413)
export const UnsupportedImageError = createError<[string]>('UNSUPPORTED_MEDIA_TYPE', '%s', 415)
export const RateLimitedError = createError<[string]>('RATE_LIMITED', '%s', 429)
export const NotReadyError = createError<[string]>('NOT_READY', '%s', 503)
/** the backend's database cannot be reached now (down, restarting, full of connections): waiting may fix it */
export const BackendUnavailableError = createError<[string]>('BACKEND_UNAVAILABLE', '%s', 503)
export const StorageFullError = createError<[string]>('INSUFFICIENT_STORAGE', '%s', 507)
