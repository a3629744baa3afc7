/** Decoding of base64 images sent in JSON bodies. */
import { BadRequestError, PayloadTooLargeError } from '../../../core/errors.js'

const DATA_URL = /^data:([^,;]*)((?:;[^,;]*)*),/i
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/**
 * Decodes plain base64 (standard or URL-safe alphabet, whitespace ignored) or a
 * `data:<type>;base64,` URL into bytes. `field` names the request field in errors,
 * e.g. `body/query/0/image`. Throws 400 for invalid base64 and 413 above `maxBytes`.
 */
export function decodeBase64Image (value: string, field: string, maxBytes: number): Buffer {
  let b64 = value
  const m = DATA_URL.exec(value)
  if (m !== null) {
    if (!/;base64$/i.test(m[2] ?? '')) throw new BadRequestError(`${field} is a data: URL without ;base64: only base64 data URLs are accepted`)
    b64 = value.slice(m[0].length)
  }
  b64 = b64.replace(/\s+/g, '').replace(/-/g, '+').replace(/_/g, '/')
  if (b64.length === 0 || !BASE64.test(b64) || b64.replace(/=+$/, '').length % 4 === 1) {
    throw new BadRequestError(`${field} is not valid base64: send the image bytes as base64 or a data: URL`)
  }
  const approx = Math.floor(b64.replace(/=+$/, '').length * 3 / 4)
  if (approx > maxBytes) throw new PayloadTooLargeError(`${field} is larger than ${maxBytes} bytes (MAX_UPLOAD_BYTES)`)
  return Buffer.from(b64, 'base64')
}
