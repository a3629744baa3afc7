/**
 * A small API client for the reliability tests, over a real socket (fetch) or in-process
 * (`app.inject`), with the assertions every test shares: the one error shape, "still up",
 * and "the index did not change".
 */
import assert from 'node:assert/strict'
import { STATUS_CODES } from 'node:http'
import type { FastifyInstance } from 'fastify'
import { multipart, type FormEntry } from '../../helpers/build-app.js'

export interface Res {
  status: number
  headers: Headers
  body: Buffer
  text: string
  /** the parsed JSON body (undefined when the body is not JSON) */
  json: any
}

export interface Req {
  method: string
  path: string
  headers?: Record<string, string>
  /** sent as application/json (JSON.stringify) */
  json?: unknown
  /** sent as is */
  body?: Buffer | string
  /** sent as multipart/form-data, parts in this order */
  form?: FormEntry[]
}

export type Transport = (req: { method: string, path: string, headers: Record<string, string>, body?: Buffer }) => Promise<Res>

function toRes (status: number, headers: Headers, body: Buffer): Res {
  const text = body.toString('utf8')
  let json: unknown
  try { json = text === '' ? undefined : JSON.parse(text) } catch { json = undefined }
  return { status, headers, body, text, json }
}

/** Requests over a real socket to `baseUrl`. */
export function httpTransport (baseUrl: string): Transport {
  return async ({ method, path, headers, body }) => {
    const res = await fetch(baseUrl + path, { method, headers, ...(body === undefined ? {} : { body: new Uint8Array(body) }), signal: AbortSignal.timeout(60_000) })
    return toRes(res.status, res.headers, Buffer.from(await res.arrayBuffer()))
  }
}

/** Requests through `app.inject` (no socket). */
export function injectTransport (app: FastifyInstance): Transport {
  return async ({ method, path, headers, body }) => {
    const res = await app.inject({ method: method as 'GET', url: path, headers, ...(body === undefined ? {} : { payload: body }) })
    const h = new Headers()
    for (const [k, v] of Object.entries(res.headers)) {
      if (v === undefined) continue
      for (const one of Array.isArray(v) ? v : [v]) h.append(k, String(one))
    }
    return toRes(res.statusCode, h, res.rawPayload)
  }
}

export interface UploadFile {
  bytes: Buffer
  filename?: string
  /** the part's content type (default application/octet-stream) */
  type?: string
  id?: string
  metadata?: Record<string, unknown>
}

/** The parts of an image upload: for each file, its `id` and `metadata` fields, then the file part. */
export function imageForm (files: UploadFile[]): FormEntry[] {
  return files.flatMap((f, i): FormEntry[] => [
    ...(f.id === undefined ? [] : [['id', f.id] as FormEntry]),
    ...(f.metadata === undefined ? [] : [['metadata', JSON.stringify(f.metadata)] as FormEntry]),
    ['file', { bytes: f.bytes, filename: f.filename ?? `image-${i}.png`, type: f.type ?? 'application/octet-stream' }]
  ])
}

export interface ItemResult { id: string, status: 'indexed' | 'duplicate' | 'failed', error?: string, code?: string, filename?: string }
export interface Hit { id: string, score: number, metadata: Record<string, unknown>, terms?: number[] }

export class Api {
  constructor (readonly send: Transport, readonly defaultHeaders: Record<string, string> = {}) {}

  /** The same API with extra default headers (e.g. Authorization). */
  with (headers: Record<string, string>): Api {
    return new Api(this.send, { ...this.defaultHeaders, ...headers })
  }

  async req (r: Req): Promise<Res> {
    const headers: Record<string, string> = { ...this.defaultHeaders, ...r.headers }
    let body: Buffer | undefined
    if (r.json !== undefined) {
      body = Buffer.from(typeof r.json === 'string' ? r.json : JSON.stringify(r.json))
      headers['content-type'] ??= 'application/json'
    } else if (r.form !== undefined) {
      const enc = await multipart(r.form)
      body = enc.payload
      headers['content-type'] ??= enc.headers['content-type']
    } else if (r.body !== undefined) {
      body = Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body)
    }
    return await this.send({ method: r.method, path: r.path, headers, ...(body === undefined ? {} : { body }) })
  }

  async get (path: string, headers?: Record<string, string>): Promise<Res> { return await this.req({ method: 'GET', path, ...(headers === undefined ? {} : { headers }) }) }
  async del (path: string): Promise<Res> { return await this.req({ method: 'DELETE', path }) }
  async post (path: string, json: unknown): Promise<Res> { return await this.req({ method: 'POST', path, json }) }
  async search (body: unknown): Promise<Res> { return await this.post('/v1/search', body) }
  async upload (files: UploadFile[], path = '/v1/images'): Promise<Res> { return await this.req({ method: 'POST', path, form: imageForm(files) }) }

  /**
   * Uploads and returns the per-item results: from a 200, or, when every file failed, from the
   * error answer that carries them (asserting its shape).
   */
  async uploadOk (files: UploadFile[]): Promise<ItemResult[]> {
    const res = await this.upload(files)
    if (res.status !== 200 && Array.isArray(res.json?.items)) assertError(res, (s) => s >= 400, undefined, 'POST /v1/images, every file failed')
    else assert.equal(res.status, 200, `POST /v1/images answered ${res.status}: ${res.text}`)
    const items = res.json.items as ItemResult[]
    assert.equal(items.length, files.length, 'one result per file')
    return items
  }

  /** Search hits, asserting a 200. */
  async hits (body: unknown): Promise<Hit[]> {
    const res = await this.search(body)
    assert.equal(res.status, 200, `search ${JSON.stringify(body).slice(0, 200)} answered ${res.status}: ${res.text}`)
    return res.json.results as Hit[]
  }

  async counts (): Promise<{ images: number, texts: number }> {
    const res = await this.get('/v1/info')
    assert.equal(res.status, 200, `GET /v1/info answered ${res.status}: ${res.text}`)
    return res.json.counts
  }

  async assertHealthy (): Promise<void> {
    const res = await this.get('/health')
    assert.equal(res.status, 200, `GET /health answered ${res.status}: ${res.text}`)
  }

  /**
   * Asserts that `id` is stored and that searching with its own embedding finds it first
   * (or tied first: two images may embed identically).
   */
  async assertFindable (id: string): Promise<void> {
    const rec = await this.get(`/v1/images/${encodeURIComponent(id)}`)
    assert.equal(rec.status, 200, `GET /v1/images/${id} answered ${rec.status}: ${rec.text}`)
    const hits = await this.hits({ query: [{ imageId: id }], k: 5, includeQueryImages: true })
    const self = hits.find((h) => h.id === id)
    assert.ok(self !== undefined && hits[0] !== undefined && hits[0].score - self.score < 1e-5,
      `searching with image "${id}" should return it first, got ${JSON.stringify(hits.map((h) => [h.id, h.score]))}`)
  }

  /** Polls a job until it is no longer queued/running; returns its last view. */
  async waitForJob (jobId: string, timeoutMs: number): Promise<JobViewT> {
    const deadline = Date.now() + timeoutMs
    while (true) {
      const res = await this.get(`/v1/index-jobs/${encodeURIComponent(jobId)}`)
      assert.equal(res.status, 200, `GET job answered ${res.status}: ${res.text}`)
      const view = res.json as JobViewT
      if (view.status !== 'queued' && view.status !== 'running') return view
      if (Date.now() > deadline) throw new Error(`job ${jobId} still ${view.status} after ${timeoutMs} ms: ${JSON.stringify(view)}`)
      await sleep(100)
    }
  }
}

export interface JobViewT { id: string, status: string, total: number, done: number, failed: number, errors: Array<{ item: string, error: string }> }

export const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Asserts `res` is an error in the one shape `{statusCode, code, error, message}` with `status` (and
 * `code`); `items` may join them where every item of a POST /v1/images failed, each item failed.
 */
export function assertError (res: Res, status: number | ((s: number) => boolean), code?: string | RegExp, what = ''): void {
  const where = `${what}${what === '' ? '' : ': '}answered ${res.status} ${res.text.slice(0, 300)}`
  if (typeof status === 'number') assert.equal(res.status, status, where)
  else assert.ok(status(res.status), where)
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, `${where} (content-type)`)
  const body = res.json as Record<string, unknown>
  assert.ok(body !== null && typeof body === 'object', where)
  assert.deepEqual(Object.keys(body).filter((k) => k !== 'items').sort(), ['code', 'error', 'message', 'statusCode'], `${where} (error shape keys)`)
  if ('items' in body) {
    assert.ok(Array.isArray(body.items) && body.items.length > 0, `${where} (items)`)
    for (const it of body.items as ItemResult[]) assert.equal(it.status, 'failed', `${where} (an item of an error)`)
  }
  assert.equal(body.statusCode, res.status, where)
  assert.equal(body.error, STATUS_CODES[res.status], where)
  assert.equal(typeof body.message, 'string', where)
  assert.ok((body.message as string).length > 0, where)
  assert.match(body.code as string, /^[A-Z][A-Z_]+$/, where)
  if (code !== undefined) {
    if (typeof code === 'string') assert.equal(body.code, code, where)
    else assert.match(body.code as string, code, where)
  }
}

/**
 * Asserts a multipart POST /v1/images answer in which every file failed with `code` (or one of
 * `code`): an error in the one shape, whose code is the files' common one, carrying every file's reason.
 */
export function assertItemsFailed (res: Res, code: string | string[], what = ''): void {
  assertError(res, (s) => s >= 400 && s < 500, undefined, `${what}: POST /v1/images`)
  const items = res.json.items as ItemResult[]
  assert.ok(Array.isArray(items), `${what}: the error carries the items: ${res.text.slice(0, 300)}`)
  if (new Set(items.map((it) => it.code)).size === 1) assert.equal(res.json.code, items[0]?.code, `${what}: the error's code is the files' reason`)
  assert.ok(items.length > 0, what)
  for (const it of items) {
    assert.equal(it.status, 'failed', `${what}: ${JSON.stringify(it)}`)
    assert.ok(typeof code === 'string' ? it.code === code : code.includes(it.code ?? ''), `${what}: expected code ${String(code)}, got ${JSON.stringify(it)}`)
    assert.ok(typeof it.error === 'string' && it.error.length > 0, `${what}: a failed item says why`)
  }
}

/** Runs every check, then fails once, listing the first line of each failure: one run names every case that misbehaves. */
export async function checkAll (checks: Array<() => Promise<void>>): Promise<void> {
  const problems: string[] = []
  for (const check of checks) {
    try { await check() } catch (err) { problems.push((err as Error).message.split('\n')[0]!) }
  }
  assert.deepEqual(problems, [])
}

export interface IndexState { counts: { images: number, texts: number }, probes: string[][] }

/** What the index looks like from outside: the counts and the ids a few fixed searches return. */
export async function indexState (api: Api, probeIds: string[] = []): Promise<IndexState> {
  const probes: string[][] = []
  probes.push((await api.hits({ query: [{ text: 'a red circle' }], k: 20 })).map((h) => h.id))
  for (const id of probeIds) probes.push((await api.hits({ query: [{ imageId: id }], k: 20, includeQueryImages: true })).map((h) => h.id))
  return { counts: await api.counts(), probes }
}
