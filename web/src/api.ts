/**
 * The HTTP API as the page uses it. Every failure becomes an ApiError whose message
 * is the API's own `message` (error shape `{statusCode, code, error, message}`).
 */
const KEY_STORAGE = 'align-search.apiKey'

export class ApiError extends Error {
  /** each item's outcome, when every item of a several-item request failed (POST /v1/images) */
  items?: unknown[]
  constructor (readonly status: number, readonly code: string, message: string) {
    super(message)
    this.name = 'ApiError'
  }
}

export function getApiKey (): string {
  try { return localStorage.getItem(KEY_STORAGE) ?? '' } catch { return '' }
}

export function setApiKey (key: string): void {
  try {
    if (key === '') localStorage.removeItem(KEY_STORAGE)
    else localStorage.setItem(KEY_STORAGE, key)
  } catch { /* storage disabled: the key lives for this page only */ }
}

/** The wire form of a query term. `file` names a multipart part. */
export type WireTerm =
  | { text: string, weight: number }
  | { imageId: string, weight: number }
  | { file: string, weight: number }
  | { vector: number[], weight: number }

export interface SearchBody {
  query: WireTerm[]
  target: 'images' | 'texts'
  k: number
  minScore?: number
  /** the metadata filter (the API's language, src/core/metadata-filter.ts) */
  filter?: Record<string, unknown>
  explain: boolean
}

/** `source`: where the image came from (a path under IMPORT_DIR or an uploaded file's name), null when unknown */
export interface SearchHit { id: string, score: number, metadata?: Record<string, unknown>, source?: string | null, text?: string, terms?: number[] }
export interface SearchResponse { results: SearchHit[], model?: string, tookMs?: number }
export interface IngestItem { id: string, status: string, error?: string }
export interface JobView {
  id: string
  status: 'queued' | 'running' | 'done' | 'failed' | 'cancelled'
  total: number
  /** indexed + duplicate */
  done: number
  indexed?: number
  /** items whose bytes were already stored; `duplicates` names the stored id */
  duplicate?: number
  failed: number
  errors?: Array<{ item: string, error: string }>
  duplicates?: Array<{ item: string, id: string }>
  skipped?: { notImage: number, unreadable: number, paths: Array<{ path: string, reason: string }> }
  warning?: string
  demo?: boolean
}
export interface ClassifyResponse { model?: string, results: Array<{ label: string, probability: number, score: number }> }

async function request<T> (method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' }
  const key = getApiKey()
  // Writes need the key when the server has one; reads too if it runs with API_KEY_READS.
  if (key !== '') headers.authorization = `Bearer ${key}`
  let payload: BodyInit | undefined
  if (body instanceof FormData) payload = body
  else if (body !== undefined) {
    headers['content-type'] = 'application/json'
    payload = JSON.stringify(body)
  }
  let res: Response
  try {
    res = await fetch(path, { method, headers, body: payload, signal })
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err
    throw new ApiError(0, 'NETWORK', `Could not reach the server (${(err as Error).message}).`)
  }
  const text = await res.text()
  let json: unknown
  try { json = text === '' ? undefined : JSON.parse(text) } catch { json = undefined }
  if (!res.ok) {
    const e = (json ?? {}) as { message?: unknown, error?: unknown, code?: unknown, items?: unknown }
    const message = typeof e.message === 'string' && e.message !== ''
      ? e.message
      : `The server answered ${res.status} ${typeof e.error === 'string' ? e.error : res.statusText}`.trim()
    const err = new ApiError(res.status, typeof e.code === 'string' ? e.code : `HTTP_${res.status}`, message)
    if (Array.isArray(e.items)) err.items = e.items
    throw err
  }
  return json as T
}

/**
 * Run a search. Uploaded images travel as multipart file parts referenced by
 * `{file: <part name>}` from the JSON in the `query` part; otherwise plain JSON.
 */
export async function search (body: SearchBody, files: Map<string, Blob>, signal?: AbortSignal): Promise<SearchResponse> {
  if (files.size === 0) return await request('POST', '/v1/search', body, signal)
  const form = new FormData()
  form.append('query', JSON.stringify(body))
  for (const [name, blob] of files) form.append(name, blob, blob instanceof File ? blob.name : `${name}.png`)
  return await request('POST', '/v1/search', form, signal)
}

export interface ImageRecord { id: string, width?: number, height?: number, metadata?: Record<string, unknown>, source?: string | null }

export async function getImage (id: string): Promise<ImageRecord> {
  return await request('GET', `/v1/images/${encodeURIComponent(id)}`)
}

/** GET /v1/models: the active model, the standby one and a switch's progress. */
export interface ModelsStatus {
  active: { modelId: string, dim: number }
  standby: null | { modelId: string, dim: number, state: 'building' | 'ready', progress?: { images: { done: number, total: number }, texts: { done: number, total: number } } }
  running: boolean
}

export async function getModels (): Promise<ModelsStatus> {
  return await request('GET', '/v1/models')
}

/** Swap to the standby model (one atomic step on the server). */
export async function swapModels (): Promise<ModelsStatus> {
  return await request('POST', '/v1/models/swap')
}

export async function getInfo (): Promise<unknown> {
  return await request('GET', '/v1/info')
}

/** A file part; the server keeps its file name as the image's `source`. */
function appendFile (form: FormData, file: File): void {
  form.append('file', file, file.name)
}

/** Upload files to POST /v1/images in chunks of `chunk` (≤ 64); `onChunk` reports items as they finish. */
export async function uploadImages (files: File[], onChunk: (items: IngestItem[], offset: number) => void, chunk = 32): Promise<void> {
  const size = Math.max(1, Math.min(64, chunk))
  for (let i = 0; i < files.length; i += size) {
    const form = new FormData()
    for (const file of files.slice(i, i + size)) appendFile(form, file)
    let items: IngestItem[]
    try {
      items = (await request<{ items: IngestItem[] }>('POST', '/v1/images', form)).items
    } catch (err) {
      // every file of this chunk failed: report them like any failure and go on with the next chunk
      if (!(err instanceof ApiError) || err.items === undefined) throw err
      items = err.items as IngestItem[]
    }
    onChunk(items, i)
  }
}

export async function startDirectoryJob (directory: string): Promise<string> {
  const res = await request<{ jobId: string }>('POST', '/v1/index-jobs', { directory })
  return res.jobId
}

export async function startUploadJob (files: File[]): Promise<string> {
  const form = new FormData()
  for (const file of files) appendFile(form, file)
  const res = await request<{ jobId: string }>('POST', '/v1/index-jobs', form)
  return res.jobId
}

export async function getJob (id: string): Promise<JobView> {
  return await request('GET', `/v1/index-jobs/${encodeURIComponent(id)}`)
}

/** the newest jobs, wherever they were started (this page, another browser, the CLI, the demo pool) */
export async function listJobs (limit = 20): Promise<JobView[]> {
  return (await request<{ jobs: JobView[] }>('GET', `/v1/index-jobs?limit=${limit}`)).jobs
}

export async function cancelJob (id: string): Promise<JobView | undefined> {
  return await request('DELETE', `/v1/index-jobs/${encodeURIComponent(id)}`)
}

export async function classify (image: string, labels: string[], template?: string): Promise<ClassifyResponse> {
  return await request('POST', '/v1/classify', { image, labels, ...(template !== undefined && template !== '' ? { template } : {}) })
}

/** One backup file in BACKUP_DIR (GET /v1/backups). */
export interface BackupInfo {
  name: string
  bytes: number
  /** ISO time of the moment the backup holds */
  createdAt: string
  images: number
  texts: number
  unfinishedJobs: Array<{ id: string, status: string, done: number, failed: number, total: number }>
  /** written by the schedule (BACKUP_EVERY) */
  scheduled: boolean
}

export async function listBackups (): Promise<BackupInfo[]> {
  return (await request<{ backups: BackupInfo[] }>('GET', '/v1/backups')).backups
}

/** Writes a backup now; resolves when the file is complete (409 while another is written). */
export async function createBackup (): Promise<BackupInfo> {
  return await request('POST', '/v1/backups')
}

export async function deleteBackup (name: string): Promise<void> {
  await request('DELETE', backupUrl(name))
}

export function backupUrl (name: string): string {
  return `/v1/backups/${encodeURIComponent(name)}`
}

/**
 * Download a backup with the stored key in the Authorization header (a plain link cannot send
 * one): the file is read into a Blob, which Chromium keeps on disk once it is large.
 */
export async function downloadBackupBlob (name: string): Promise<Blob> {
  let res: Response
  try {
    res = await fetch(backupUrl(name), { headers: { authorization: `Bearer ${getApiKey()}` } })
  } catch (err) {
    throw new ApiError(0, 'NETWORK', `Could not reach the server (${(err as Error).message}).`)
  }
  if (!res.ok) {
    const e = await res.json().catch(() => ({})) as { message?: unknown, code?: unknown }
    throw new ApiError(res.status, typeof e.code === 'string' ? e.code : `HTTP_${res.status}`,
      typeof e.message === 'string' ? e.message : `The server answered ${res.status} ${res.statusText}`)
  }
  return await res.blob()
}

export function thumbnailUrl (id: string): string {
  return `/v1/images/${encodeURIComponent(id)}/thumbnail`
}
