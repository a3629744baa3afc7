/**
 * multipart/form-data: the @fastify/multipart parser with our limits, a guard that answers
 * 415 when a JSON-only route receives a form, and `readForm`, which reads a whole form into
 * memory in order, turning limit errors into 413s that say which limit was hit.
 */
import multipart from '@fastify/multipart'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { HttpConfig } from '../http-config.js'
import { BadRequestError, PayloadTooLargeError, UnsupportedImageError } from '../../core/errors.js'
import type { Metadata } from '../../services/types.js'
import { ID_PATTERN } from '../../core/ids.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** the route accepts multipart/form-data */
    multipart?: boolean
  }
}

/** Largest non-file form field (the `query` JSON of a search, metadata), bytes. */
export const MAX_FIELD_BYTES = 1024 * 1024

export type FormPart =
  | { kind: 'field', name: string, value: string }
  | { kind: 'file', name: string, filename: string, mimetype: string, bytes: Buffer }

export interface ReadFormOptions {
  /** most file parts accepted */
  maxFiles: number
  maxUploadBytes: number
  maxTotalBytes: number
}

const isMultipartRequest = (request: FastifyRequest): boolean =>
  (request.headers['content-type'] ?? '').toLowerCase().startsWith('multipart/form-data')

/**
 * Reads every part of a multipart request, in order, into memory.
 * Throws 413 PAYLOAD_TOO_LARGE naming the limit (files, file size, total size, field size).
 */
export async function readForm (request: FastifyRequest, opts: ReadFormOptions): Promise<FormPart[]> {
  if (!request.isMultipart()) throw new UnsupportedImageError('this endpoint expects multipart/form-data')
  const parts: FormPart[] = []
  let total = 0
  let files = 0
  const iterator = request.parts({
    limits: { files: opts.maxFiles, fileSize: opts.maxUploadBytes, fieldSize: MAX_FIELD_BYTES, parts: opts.maxFiles * 3 + 64 }
  })
  try {
    for await (const part of iterator) {
      if (part.type === 'file') {
        files++
        const bytes = await part.toBuffer()
        total += bytes.length
        if (total > opts.maxTotalBytes) throw new PayloadTooLargeError(`the files of one request may total at most ${opts.maxTotalBytes} bytes (MAX_UPLOAD_TOTAL_BYTES)`)
        parts.push({ kind: 'file', name: part.fieldname, filename: part.filename, mimetype: part.mimetype, bytes })
      } else {
        if (part.valueTruncated) throw new PayloadTooLargeError(`form field "${part.fieldname}" is larger than ${MAX_FIELD_BYTES} bytes`)
        const value = typeof part.value === 'string' ? part.value : JSON.stringify(part.value)
        total += value.length
        parts.push({ kind: 'field', name: part.fieldname, value })
      }
    }
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'FST_FILES_LIMIT') {
      throw new PayloadTooLargeError(`too many files: at most ${opts.maxFiles} file${opts.maxFiles === 1 ? '' : 's'} per request`)
    }
    if (code === 'FST_REQ_FILE_TOO_LARGE') {
      const name = (err as { part?: { filename?: string } }).part?.filename ?? `#${files}`
      throw new PayloadTooLargeError(`file "${name}" is larger than ${opts.maxUploadBytes} bytes (MAX_UPLOAD_BYTES)`)
    }
    if (code === 'FST_PARTS_LIMIT') throw new PayloadTooLargeError(`too many parts in one request: at most ${opts.maxFiles * 3 + 64}`)
    // busboy's parse errors (no boundary, truncated body, …) carry no status: they are the client's
    if (typeof (err as { statusCode?: unknown }).statusCode !== 'number') {
      throw new BadRequestError(`malformed multipart/form-data: ${(err as Error).message}`)
    }
    throw err
  }
  return parts
}

export interface FormFile { name: string, filename: string, bytes: Buffer, id?: string, metadata?: Metadata }

/** Parses a `metadata` form field: it must hold a JSON object. */
export function parseMetadataField (value: string, where: string): Metadata {
  let parsed: unknown
  try {
    parsed = JSON.parse(value)
  } catch {
    throw new BadRequestError(`${where} must be a JSON object, got invalid JSON`)
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new BadRequestError(`${where} must be a JSON object`)
  return parsed as Metadata
}

/**
 * Pairs the `id` and `metadata` fields with files: each applies to the file part that
 * FOLLOWS it. Any other field is refused, as is an id/metadata with no file after it.
 */
export function filesWithFields (parts: FormPart[]): FormFile[] {
  const files: FormFile[] = []
  let id: string | undefined
  let metadata: Metadata | undefined
  for (const part of parts) {
    const at = `form field "${part.name}" before file #${files.length + 1}`
    if (part.kind === 'file') {
      files.push({ name: part.name, filename: part.filename, bytes: part.bytes, ...(id === undefined ? {} : { id }), ...(metadata === undefined ? {} : { metadata }) })
      id = undefined
      metadata = undefined
    } else if (part.name === 'id') {
      if (id !== undefined) throw new BadRequestError(`${at}: two "id" fields for one file; id and metadata apply to the file part that follows them`)
      if (!ID_PATTERN.test(part.value)) throw new BadRequestError(`${at}: id must be 1–128 letters, digits, ".", "_", ":" or "-"`)
      id = part.value
    } else if (part.name === 'metadata') {
      if (metadata !== undefined) throw new BadRequestError(`${at}: two "metadata" fields for one file; id and metadata apply to the file part that follows them`)
      metadata = parseMetadataField(part.value, at)
    } else {
      throw new BadRequestError(`unknown form field "${part.name}": only "id" and "metadata" fields (each before its file part) and file parts are accepted`)
    }
  }
  if (id !== undefined || metadata !== undefined) {
    throw new BadRequestError('an "id" or "metadata" field is not followed by a file part: they apply to the file part that follows them')
  }
  return files
}

/** The limits a route's `readForm` call uses by default. */
export function formLimits (config: HttpConfig, maxFiles = config.maxFiles): ReadFormOptions {
  return { maxFiles, maxUploadBytes: config.maxUploadBytes, maxTotalBytes: config.maxUploadTotalBytes }
}

export default fp(async function multipartPlugin (app: FastifyInstance, opts: { config: HttpConfig }) {
  await app.register(multipart, {
    limits: { fileSize: opts.config.maxUploadBytes, files: opts.config.maxFiles, fieldSize: MAX_FIELD_BYTES },
    throwFileSizeLimit: true
  })
  // a form sent to a JSON-only route is refused before anything is parsed
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.url === undefined || request.routeOptions.config.multipart === true) return
    if (isMultipartRequest(request)) throw new UnsupportedImageError(`${request.method} ${request.routeOptions.url} does not accept multipart/form-data; send application/json`)
  })
}, { name: 'multipart' })
