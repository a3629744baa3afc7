/**
 * PostgreSQL's errors in the backend's terms: a server that is not there, starting, shutting down,
 * out of connections or too slow to answer becomes BackendUnavailableError (503), which callers
 * may retry; anything else (a wrong password, another model's data) passes through unchanged.
 * The message says the cause in words and never the server's address or credentials (node's
 * network errors carry "127.0.0.1:5432", and answers reach clients); the original error stays as
 * `cause`, for the log.
 */
import { BackendUnavailableError } from '../../core/errors.js'

/** what each code means, in words a client may read */
const CAUSES: Record<string, string> = {
  ECONNREFUSED: 'the connection was refused (the server is not running, or not listening)',
  ENOTFOUND: 'the database host name does not resolve',
  EAI_AGAIN: 'the database host name could not be resolved now',
  ETIMEDOUT: 'the connection timed out',
  ECONNRESET: 'the connection was reset',
  EHOSTUNREACH: 'the database host is unreachable',
  ENETUNREACH: 'the database network is unreachable',
  EPIPE: 'the connection was lost',
  '57P01': 'the server is shutting down (administrator command)',
  '57P02': 'the server restarts after a crash',
  '57P03': 'the server is starting up, or cannot accept connections now',
  53300: 'the server has no free connection slots',
  57014: 'a statement ran past PG_STATEMENT_TIMEOUT (the server is overloaded, or a lock is held)',
  '55P03': 'a lock was not granted within PG_LOCK_TIMEOUT',
  '25P03': 'a transaction sat idle past PG_IDLE_IN_TRANSACTION_TIMEOUT and the server ended it'
}

/** messages of node-postgres's own errors (no code): a lost connection, a connect or query timer */
const MESSAGE_CAUSES: Array<[RegExp, string]> = [
  [/Connection terminated due to connection timeout|timeout expired/i, 'the connection attempt timed out'],
  [/Query read timeout/i, 'the server did not answer within the statement timeout'],
  [/Connection terminated|Client has encountered a connection error/i, 'the connection was lost']
]

/** the first cause along `err`'s cause chain that says the server cannot be reached now */
function unreachableCause (err: unknown): string | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') {
      const cause = CAUSES[code] ?? (code.startsWith('08') ? `a connection exception (SQLSTATE ${code})` : undefined)
      if (cause !== undefined) return `${cause} [${code}]`
    }
    for (const [pattern, cause] of MESSAGE_CAUSES) if (pattern.test(e.message)) return cause
  }
  return undefined
}

/** Whether waiting may fix `err`: the server is unreachable, starting up, shutting down, full, or timed out. */
export function isUnreachable (err: unknown): boolean {
  return unreachableCause(err) !== undefined
}

/** `err` as the backend reports it: BackendUnavailableError when waiting may fix it, else `err` itself. */
export function toBackendError (err: unknown): unknown {
  if (err instanceof BackendUnavailableError) return err
  const cause = unreachableCause(err)
  if (cause === undefined) return err
  return Object.assign(new BackendUnavailableError(`PostgreSQL is unavailable: ${cause}`), { cause: err })
}
