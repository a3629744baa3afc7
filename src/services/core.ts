/** What the service functions share: the encoder, the store and the two indexes. */
import { createHash } from 'node:crypto'
import type { TableIndex } from '../index/index.js'
import type { CoreLogger } from '../jobs/index.js'
import type { Encoder } from '../ml/types.js'
import type { Store } from '../storage/index.js'

export interface Core {
  encoder: Encoder
  store: Store
  images: TableIndex
  texts: TableIndex
  dim: number
  logger: CoreLogger
}

export function sha256 (data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex')
}

export function isPlainObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v)
}

/** the error code of an error from src/errors.ts, else `fallback` */
export function codeOf (err: unknown, fallback: string): string {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^[A-Z_]+$/.test(code) ? code : fallback
}
