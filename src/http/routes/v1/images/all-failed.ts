/**
 * When not one file of a POST /v1/images request was stored, the request failed: it answers the
 * status of the reason (a text file alone is a 415, not a 200), in the one error shape, with every
 * file's outcome in `items`. A request where anything was stored (or was already there) stays a 200
 * with per-item statuses.
 */
import {
  BadRequestError, ConflictError, NotReadyError, PayloadTooLargeError, StorageFullError, UnsupportedImageError
} from '../../../../core/errors.js'
import type { ErrorResponseT } from '../../../schemas/common.js'
import type { ImagesResponseT } from '../../../schemas/images.js'

type Item = ImagesResponseT['items'][number]
type FailedItemT = NonNullable<ErrorResponseT['items']>[number]

interface Reason { status: number, make: (message: string) => Error }

const REASONS: Record<string, Reason> = {
  BAD_REQUEST: { status: 400, make: (m) => new BadRequestError(m) },
  CONFLICT: { status: 409, make: (m) => new ConflictError(m) },
  PAYLOAD_TOO_LARGE: { status: 413, make: (m) => new PayloadTooLargeError(m) },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, make: (m) => new UnsupportedImageError(m) },
  INSUFFICIENT_STORAGE: { status: 507, make: (m) => new StorageFullError(m) },
  NOT_READY: { status: 503, make: (m) => new NotReadyError(m) }
}
/** a code this table does not know is the server's fault: a 500 (its message is not sent) */
const UNKNOWN: Reason = { status: 500, make: (m) => Object.assign(new Error(m), { statusCode: 500 }) }
const MIXED: Reason = { status: 400, make: (m) => new BadRequestError(m) }

/** how many failures the message names before "and N more" */
const NAMED = 2

/**
 * The error to answer with when every item failed, carrying the items; undefined when any item
 * was indexed or a duplicate. Its status: the items' common reason (400, 409, 413, 415, 507); for
 * different reasons, a server-side one (5xx) when there is one, else 400.
 */
export function allFailedError (items: Item[]): (Error & { items: FailedItemT[] }) | undefined {
  if (items.length === 0 || items.some((it) => it.status !== 'failed')) return undefined
  const failed: FailedItemT[] = items.map((it) => ({ ...it, status: 'failed' }))
  const reasons = [...new Set(failed.map((it) => REASONS[it.code ?? ''] ?? UNKNOWN))]
  const reason = reasons.length === 1 ? reasons[0]! : (reasons.find((r) => r.status >= 500) ?? MIXED)
  return Object.assign(reason.make(describe(failed)), { items: failed })
}

function describe (failed: FailedItemT[]): string {
  const named = failed.slice(0, NAMED).map((it, i) => `${label(it, i)}: ${it.error ?? it.code ?? 'failed'}`)
  if (failed.length === 1) return `${label(failed[0]!, 0)} was not indexed: ${failed[0]!.error ?? failed[0]!.code ?? 'failed'}`
  const more = failed.length > NAMED ? `; and ${failed.length - NAMED} more` : ''
  return `none of the ${failed.length} files was indexed: ${named.join('; ')}${more} (items holds each file's reason)`
}

function label (it: FailedItemT, i: number): string {
  if (it.filename !== undefined && it.filename !== '') return it.filename
  return it.id !== '' ? `"${it.id}"` : `file #${i + 1}`
}
