/**
 * PostgreSQL's errors in the backend's terms: a server that is not there, starting, shutting down
 * or out of connections becomes BackendUnavailableError (503), which callers may retry; anything
 * else (a wrong password, another model's data) passes through unchanged.
 */
import { BackendUnavailableError } from '../../core/errors.js'

/** Node's network error codes, and PostgreSQL's SQLSTATEs for admin shutdown, crash shutdown, cannot connect now, too many connections */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', '57P01', '57P02', '57P03', '53300'])

/** Whether waiting may fix `err`: the server is unreachable, starting up, shutting down or full (class 08: connection exceptions). */
export function isUnreachable (err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && (UNREACHABLE_CODES.has(code) || code.startsWith('08'))) return true
    if (/Connection terminated|timeout expired/i.test(e.message)) return true
  }
  return false
}

/** `err` as the backend reports it: BackendUnavailableError when waiting may fix it, else `err` itself. */
export function toBackendError (err: unknown): unknown {
  if (err instanceof BackendUnavailableError || !isUnreachable(err)) return err
  const message = (err as Error).message
  // pg-pool's own errors already say "cannot connect to PostgreSQL at …"; a bare server message does not
  return Object.assign(new BackendUnavailableError(message.includes('PostgreSQL') ? message : `PostgreSQL is unavailable: ${message}`), { cause: err })
}
