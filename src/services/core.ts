/** What the service functions share: the encoder and the backend. */
import { createHash } from 'node:crypto'
import type { Backend } from '../backends/ports.js'
import type { Encoder, PreviewFormat } from '../ml/types.js'
import type { Logger } from '../core/types.js'

export interface Core {
  /** the active model's encoder (a model swap replaces it, together with `dim` and `generation`) */
  encoder: Encoder
  backend: Backend
  dim: number
  logger: Logger
  /** the standby model's encoder while there is one (a switch, or the previous model kept for a swap back): writes embed with both */
  standbyEncoder?: Encoder | undefined
  /** bumped by every model swap: a search that straddles one is run again within one model */
  generation?: number
  /** what ingest keeps so that another model can re-embed the image (README "Changing the model") */
  keep?: KeepOptions
}

export interface KeepOptions {
  /** PREVIEW_SIZE (shorter side, px; 0 = none) and PREVIEW_FORMAT */
  preview: { size: number, format: PreviewFormat }
  /** KEEP_ORIGINALS: the bytes themselves, for none, for uploads (no source file under IMPORT_DIR / DEMO_POOL) or for all */
  originals: 'none' | 'uploads' | 'all'
  /** folders a stored `source` is looked up in (IMPORT_DIR, then DEMO_POOL) */
  sourceRoots: string[]
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
