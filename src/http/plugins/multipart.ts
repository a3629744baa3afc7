/**
 * multipart/form-data: the @fastify/multipart parser with our limits, a guard that answers
 * 415 when a JSON-only route receives a form, `readForm`, which reads a whole form into memory in
 * order, and `streamFormFiles`, which hands over its files as they arrive (an index job's upload,
 * written to staging as it comes); limit errors become 413s that say which limit was hit.
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
  const parts: FormPart[] = []
  for await (const part of formParts(request, opts)) {
    parts.push(part.kind === 'field' ? part : { ...part, bytes: await part.toBuffer() })
  }
  return parts
}

type StreamedPart =
  | { kind: 'field', name: string, value: string }
  | { kind: 'file', name: string, filename: string, mimetype: string, stream: AsyncIterable<Buffer>, toBuffer: () => Promise<Buffer> }

/**
 * The parts of a multipart request, in order, each file as a stream that must be read (or dropped)
 * before the next part is asked for. The limits hold as the bytes arrive: a file or the request
 * that passes one throws 413 from the file's stream; a client that goes away throws 400.
 */
async function * formParts (request: FastifyRequest, opts: ReadFormOptions): AsyncGenerator<StreamedPart> {
  if (!request.isMultipart()) throw new UnsupportedImageError('this endpoint expects multipart/form-data')
  let total = 0
  let files = 0
  const iterator = request.parts({
    limits: { files: opts.maxFiles, fileSize: opts.maxUploadBytes, fieldSize: MAX_FIELD_BYTES, parts: opts.maxFiles * 3 + 64 }
  })
  try {
    for await (const part of iterator) {
      if (part.type === 'file') {
        files++
        const { file, filename } = part
        const at = files
        const stream = async function * (): AsyncGenerator<Buffer> {
          try {
            for await (const piece of file as AsyncIterable<Buffer>) {
              total += piece.length
              if (total > opts.maxTotalBytes) throw new PayloadTooLargeError(`the files of one request may total at most ${opts.maxTotalBytes} bytes (MAX_UPLOAD_TOTAL_BYTES)`)
              yield piece
            }
          } catch (err) {
            throw formError(err, opts, filename === '' ? `#${at}` : filename)
          }
          // busboy ends a file cut at MAX_UPLOAD_BYTES as if it were whole, marking it truncated
          if (file.truncated) throw formError(Object.assign(new Error('file too large'), { code: 'FST_REQ_FILE_TOO_LARGE' }), opts, filename === '' ? `#${at}` : filename)
        }
        const toBuffer = async (): Promise<Buffer> => {
          const pieces: Buffer[] = []
          for await (const piece of stream()) pieces.push(piece)
          return Buffer.concat(pieces)
        }
        yield { kind: 'file', name: part.fieldname, filename, mimetype: part.mimetype, stream: stream(), toBuffer }
      } else {
        if (part.valueTruncated) throw new PayloadTooLargeError(`form field "${part.fieldname}" is larger than ${MAX_FIELD_BYTES} bytes`)
        const value = typeof part.value === 'string' ? part.value : JSON.stringify(part.value)
        total += value.length
        yield { kind: 'field', name: part.fieldname, value }
      }
    }
  } catch (err) {
    throw formError(err, opts, `#${files}`)
  }
}

/** The error of a form that could not be read: 413 naming the limit passed, 400 for a malformed or cut-off body. */
function formError (err: unknown, opts: ReadFormOptions, file: string): unknown {
  const code = (err as { code?: string }).code
  if (code === 'FST_FILES_LIMIT') {
    return new PayloadTooLargeError(`too many files: at most ${opts.maxFiles} file${opts.maxFiles === 1 ? '' : 's'} per request`)
  }
  if (code === 'FST_REQ_FILE_TOO_LARGE') {
    const name = (err as { part?: { filename?: string } }).part?.filename ?? file
    return new PayloadTooLargeError(`file "${name}" is larger than ${opts.maxUploadBytes} bytes (MAX_UPLOAD_BYTES)`)
  }
  if (code === 'FST_PARTS_LIMIT') return new PayloadTooLargeError(`too many parts in one request: at most ${opts.maxFiles * 3 + 64}`)
  // busboy's parse errors (no boundary, truncated body, …) carry no status: they are the client's
  if (typeof (err as { statusCode?: unknown }).statusCode !== 'number') {
    return new BadRequestError(`malformed multipart/form-data: ${(err as Error).message}`)
  }
  return err
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
  const pairing = new FieldPairing()
  const files = parts.flatMap((part) => part.kind === 'file' ? [{ name: part.name, filename: part.filename, bytes: part.bytes, ...pairing.take() }] : (pairing.field(part), []))
  pairing.end()
  return files
}

/** A file of a form being read: `bytes` arrive as it is read, once. */
export interface StreamedFormFile { name: string, filename: string, bytes: AsyncIterable<Buffer>, id?: string, metadata?: Metadata }

/**
 * The files of a multipart request as they arrive, each with the `id` and `metadata` fields before
 * it (as filesWithFields pairs them); read each file's bytes before asking for the next file. Only
 * the part being read is in memory. Throws as readForm does, from the file's bytes when a limit is
 * passed there.
 */
export async function * streamFormFiles (request: FastifyRequest, opts: ReadFormOptions): AsyncGenerator<StreamedFormFile> {
  const pairing = new FieldPairing()
  for await (const part of formParts(request, opts)) {
    if (part.kind === 'field') pairing.field(part)
    else yield { name: part.name, filename: part.filename, bytes: part.stream, ...pairing.take() }
  }
  pairing.end()
}

/** The `id` and `metadata` fields waiting for the file part they apply to. */
class FieldPairing {
  private files = 0
  private id: string | undefined
  private metadata: Metadata | undefined

  field (part: { name: string, value: string }): void {
    const at = `form field "${part.name}" before file #${this.files + 1}`
    if (part.name === 'id') {
      if (this.id !== undefined) throw new BadRequestError(`${at}: two "id" fields for one file; id and metadata apply to the file part that follows them`)
      if (!ID_PATTERN.test(part.value)) throw new BadRequestError(`${at}: id must be 1–128 letters, digits, ".", "_", ":" or "-"`)
      this.id = part.value
    } else if (part.name === 'metadata') {
      if (this.metadata !== undefined) throw new BadRequestError(`${at}: two "metadata" fields for one file; id and metadata apply to the file part that follows them`)
      this.metadata = parseMetadataField(part.value, at)
    } else {
      throw new BadRequestError(`unknown form field "${part.name}": only "id" and "metadata" fields (each before its file part) and file parts are accepted`)
    }
  }

  /** the fields of the file part that just came */
  take (): { id?: string, metadata?: Metadata } {
    const fields = { ...(this.id === undefined ? {} : { id: this.id }), ...(this.metadata === undefined ? {} : { metadata: this.metadata }) }
    this.files++
    this.id = undefined
    this.metadata = undefined
    return fields
  }

  end (): void {
    if (this.id !== undefined || this.metadata !== undefined) {
      throw new BadRequestError('an "id" or "metadata" field is not followed by a file part: they apply to the file part that follows them')
    }
  }
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
  // A form refused part-way through (a limit, a full staging area) still has bytes on its way, piped
  // into a parser nobody reads any more: they would stall the connection, and with it the next request
  // a keep-alive client sends there, until a timeout resets it. Discarded instead, as Node does for a
  // body no handler touched.
  app.addHook('onError', async (request) => {
    if (!isMultipartRequest(request) || request.raw.complete) return
    request.raw.unpipe()
    request.raw.resume()
  })
  // a form sent to a JSON-only route is refused before anything is parsed
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.url === undefined || request.routeOptions.config.multipart === true) return
    if (isMultipartRequest(request)) throw new UnsupportedImageError(`${request.method} ${request.routeOptions.url} does not accept multipart/form-data; send application/json`)
  })
}, { name: 'multipart' })
