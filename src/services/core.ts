/** What the service functions share: the encoder and the backend. */
import { createHash } from 'node:crypto'
import type { Backend } from '../backends/ports.js'
import type { Encoder } from '../ml/types.js'
import type { Logger } from '../core/types.js'

export interface Core {
  encoder: Encoder
  backend: Backend
  dim: number
  logger: Logger
}

export function sha256 (data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex')
}

export function isPlainObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v)
}

/** the error code of an error from src/core/errors.ts, else `fallback` */
export function codeOf (err: unknown, fallback: string): string {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^[A-Z_]+$/.test(code) ? code : fallback
}
