/**
 * An in-memory, deterministic `Services` for route tests: no model, no index.
 * Text embeddings are a hash of the text; image embeddings a hash of the bytes.
 * "Images" are bytes that start with the PNG or JPEG signature; anything else fails
 * like the real decoder does (UNSUPPORTED_MEDIA_TYPE).
 */
import { createHash } from 'node:crypto'
import { BadRequestError, ConflictError, NotFoundError, UnsupportedImageError } from '../../src/core/errors.js'
import { matchesFilter, parseFilter } from '../../src/core/metadata-filter.js'
import type {
  BackendHealth, ImageRecord, IndexStats, IngestItem, IngestResult, JobSource, JobView, Metadata,
  QueryTerm, SearchHit, SearchRequest, Services
} from '../../src/services/types.js'
import type { ModelConfig } from '../../src/ml/types.js'

export const FAKE_DIM = 8

export const FAKE_MODEL: ModelConfig = {
  name: 'fake',
  modelId: 'fake-v1',
  embeddingDim: FAKE_DIM,
  maxTextLength: 32,
  temperature: 0.07,
  promptTemplate: 'a photo of {}',
  usesTokenTypeIds: false,
  license: 'CC0-1.0',
  source: 'test/helpers/fake-services.ts'
}

/** The smallest valid PNG signature + IHDR start; enough for the fake's "is an image" check. */
export const PNG_BYTES = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex')

/** A distinct fake image per seed. */
export function fakeImage (seed: string | number): Buffer {
  return Buffer.concat([PNG_BYTES, Buffer.from(`seed:${seed}`)])
}

const isImage = (b: Buffer): boolean =>
  b.subarray(0, 8).equals(PNG_BYTES.subarray(0, 8)) || (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff)

function embed (bytes: Buffer | string): Float32Array {
  const h = createHash('sha256').update(bytes).digest()
  const v = new Float32Array(FAKE_DIM)
  for (let i = 0; i < FAKE_DIM; i++) v[i] = ((h[i] ?? 0) - 127.5) / 127.5
  return normalize(v)
}

function normalize (v: Float32Array): Float32Array {
  let n = 0
  for (const x of v) n += x * x
  n = Math.sqrt(n) || 1
  return v.map((x) => x / n)
}

const dot = (a: Float32Array, b: Float32Array): number => a.reduce((s, x, i) => s + x * (b[i] ?? 0), 0)

interface StoredImage { record: ImageRecord, vector: Float32Array }
interface StoredText { id: string, text: string, metadata: Metadata, vector: Float32Array }

export interface FakeServices extends Services {
  setReady: (ready: boolean) => void
  /** what health() answers (default ok) */
  setHealth: (health: BackendHealth) => void
  readonly images: Map<string, StoredImage>
  readonly texts: Map<string, StoredText>
  readonly jobs: Map<string, JobView>
  /** every call, in order: [method, first argument] */
  readonly calls: Array<[string, unknown]>
  closed: boolean
}

/** A fresh fake. Ids are deterministic: img_1, img_2, …; txt_1, …; job_1, …. */
export function createFakeServices (): FakeServices {
  let ready = true
  let health: BackendHealth = { ok: true }
  let seq = 0
  const images = new Map<string, StoredImage>()
  const texts = new Map<string, StoredText>()
  const jobs = new Map<string, JobView>()
  const calls: Array<[string, unknown]> = []
  const now = (): string => new Date(Date.UTC(2024, 0, 1, 0, 0, seq)).toISOString()

  const termVector = (t: QueryTerm): Float32Array => {
    if ('text' in t) return embed(`text:${t.text}`)
    if ('vector' in t) return normalize(Float32Array.from(t.vector))
    if ('imageId' in t) {
      const img = images.get(t.imageId)
      if (img === undefined) throw new NotFoundError(`image "${t.imageId}" not found`)
      return img.vector
    }
    if (!isImage(t.image)) throw new UnsupportedImageError('not an image')
    return embed(t.image)
  }

  const fake: FakeServices = {
    model: FAKE_MODEL,
    images,
    texts,
    jobs,
    calls,
    closed: false,
    setReady (r) { ready = r },
    setHealth (h) { health = h },
    ready: () => ready,
    health: async () => health,
    async embedTexts (list) {
      calls.push(['embedTexts', list])
      return list.map((t) => embed(`text:${t}`))
    },
    async embedImages (list) {
      calls.push(['embedImages', list])
      return list.map((b) => {
        if (!isImage(b)) throw new UnsupportedImageError('input is not a supported image (JPEG, PNG, WebP, GIF, AVIF, TIFF)')
        return embed(b)
      })
    },
    async addImages (items: IngestItem[]): Promise<IngestResult[]> {
      calls.push(['addImages', items])
      return items.map((it) => {
        if (!isImage(it.bytes)) return { id: it.id ?? '', status: 'failed', error: 'input is not a supported image (JPEG, PNG, WebP, GIF, AVIF, TIFF)', code: 'UNSUPPORTED_MEDIA_TYPE' }
        const sha256 = createHash('sha256').update(it.bytes).digest('hex')
        for (const img of images.values()) if (img.record.sha256 === sha256) return { id: img.record.id, status: 'duplicate' }
        const id = it.id ?? `img_${++seq}`
        images.set(id, { record: { id, sha256, width: 1, height: 1, metadata: it.metadata ?? {}, source: it.source ?? null, createdAt: now() }, vector: embed(it.bytes) })
        return { id, status: 'indexed' }
      })
    },
    getImage: async (id) => images.get(id)?.record,
    getThumbnail: async (id) => images.has(id) ? { bytes: Buffer.from(`RIFF-webp-${id}`), contentType: 'image/webp' } : undefined,
    deleteImage: async (id) => images.delete(id),
    async addTexts (items) {
      calls.push(['addTexts', items])
      return items.map((it) => {
        for (const t of texts.values()) if (t.text === it.text) return { id: t.id, status: 'duplicate' as const }
        const id = it.id ?? `txt_${++seq}`
        texts.set(id, { id, text: it.text, metadata: it.metadata ?? {}, vector: embed(`text:${it.text}`) })
        return { id, status: 'indexed' as const }
      })
    },
    deleteText: async (id) => texts.delete(id),
    async listRows (collection, { limit, after, filter }) {
      calls.push(['listRows', { collection, limit, after, filter }])
      const rows = collection === 'texts'
        ? [...texts.values()].map((t) => ({ id: t.id, metadata: t.metadata, createdAt: now(), text: t.text }))
        : [...images.values()].map((i) => ({ id: i.record.id, metadata: i.record.metadata, createdAt: i.record.createdAt, source: i.record.source }))
      return rows
        .filter((r) => (after === undefined || r.id > after) && Object.entries(filter ?? {}).every(([k, v]) => r.metadata[k] === v))
        .sort((a, b) => (a.id < b.id ? -1 : 1))
        .slice(0, limit)
    },
    async deleteRows (collection, filter) {
      calls.push(['deleteRows', { collection, filter }])
      const map: Map<string, { metadata?: Metadata, record?: { metadata: Metadata } }> = collection === 'texts' ? texts : images
      let n = 0
      for (const [id, row] of [...map]) {
        const metadata = row.metadata ?? row.record?.metadata ?? {}
        if (Object.entries(filter).every(([k, v]) => metadata[k] === v)) { map.delete(id); n++ }
      }
      return n
    },
    async search (req: SearchRequest): Promise<SearchHit[]> {
      calls.push(['search', req])
      const filter = parseFilter(req.filter) // the real service's check: a 400 naming the bad part
      const terms = req.query.map(termVector)
      const q = new Float32Array(FAKE_DIM)
      req.query.forEach((t, i) => { const v = terms[i]; if (v !== undefined) v.forEach((x, j) => { q[j] = (q[j] ?? 0) + x * (t.weight ?? 1) }) })
      const qn = normalize(q)
      const pool = req.target === 'texts'
        ? [...texts.values()].map((t) => ({ id: t.id, metadata: t.metadata, vector: t.vector, text: t.text, source: undefined }))
        : [...images.values()].map((i) => ({ id: i.record.id, metadata: i.record.metadata, vector: i.vector, text: undefined, source: i.record.source }))
      const excluded = new Set(req.target === 'images' && req.includeQueryImages !== true ? req.query.flatMap((t) => 'imageId' in t ? [t.imageId] : []) : [])
      return pool
        .filter((p) => !excluded.has(p.id))
        .filter((p) => filter === undefined || matchesFilter(p.metadata, filter))
        .map((p) => ({
          id: p.id,
          score: dot(qn, p.vector),
          metadata: p.metadata,
          ...(p.source === undefined ? {} : { source: p.source }),
          ...(p.text === undefined ? {} : { text: p.text }),
          ...(req.explain === true ? { terms: terms.map((t) => dot(t, p.vector)) } : {})
        }))
        .filter((h) => req.minScore === undefined || h.score >= req.minScore)
        .sort((a, b) => b.score - a.score || a.id.localeCompare(b.id))
        .slice(0, req.k)
    },
    async classify (image, labels, template) {
      calls.push(['classify', { labels, template }])
      if (!isImage(image)) throw new UnsupportedImageError('input is not a supported image (JPEG, PNG, WebP, GIF, AVIF, TIFF)')
      const iv = embed(image)
      const tpl = template ?? FAKE_MODEL.promptTemplate
      const scores = labels.map((l) => dot(iv, embed(`text:${tpl.replace('{}', l)}`)))
      const exps = scores.map((s) => Math.exp(s / FAKE_MODEL.temperature))
      const sum = exps.reduce((a, b) => a + b, 0)
      // deliberately unsorted: the route sorts
      return labels.map((label, i) => ({ label, probability: (exps[i] ?? 0) / sum, score: scores[i] ?? 0 }))
    },
    async createJob (source: JobSource) {
      calls.push(['createJob', source])
      const id = `job_${++seq}`
      const total = 'items' in source ? source.items.length : 0
      jobs.set(id, { id, status: 'queued', total, done: 0, indexed: 0, duplicate: 0, failed: 0, errors: [], duplicates: [], skipped: { notImage: 0, unreadable: 0, paths: [] }, createdAt: now(), updatedAt: now() })
      return id
    },
    async createUploadJob (upload) {
      // read as the real services do: each file's bytes before the next file
      const files: Array<{ bytes: Buffer, filename: string, id?: string, metadata?: Metadata }> = []
      for await (const f of upload) {
        const pieces: Buffer[] = []
        for await (const piece of Buffer.isBuffer(f.bytes) ? [f.bytes] : f.bytes) pieces.push(piece)
        files.push({ ...f, bytes: Buffer.concat(pieces) })
      }
      if (files.length === 0) throw new BadRequestError('no file in the upload: send one or more file parts')
      calls.push(['createUploadJob', files])
      const id = `job_${++seq}`
      jobs.set(id, { id, status: 'queued', total: files.length, done: 0, indexed: 0, duplicate: 0, failed: 0, errors: [], duplicates: [], skipped: { notImage: 0, unreadable: 0, paths: [] }, createdAt: now(), updatedAt: now() })
      return id
    },
    getJob: async (id) => jobs.get(id),
    async listJobs ({ limit, before }) {
      calls.push(['listJobs', { limit, before }])
      // insertion order is creation order; newest first, after the cursor
      const newest = [...jobs.values()].reverse()
      const from = before === undefined ? 0 : newest.findIndex((j) => j.id === before) + 1
      return before !== undefined && from === 0 ? [] : newest.slice(from, from + limit)
    },
    async cancelJob (id) {
      const job = jobs.get(id)
      if (job === undefined) return undefined
      if (job.status === 'queued' || job.status === 'running') { job.status = 'cancelled'; job.updatedAt = now() }
      return job
    },
    async resumeJob (id) {
      const job = jobs.get(id)
      if (job === undefined) return undefined
      if (job.status !== 'failed') throw new ConflictError(`index job "${id}" is ${job.status}: only a failed job can be resumed`)
      job.status = 'queued'
      job.updatedAt = now()
      return job
    },
    stats: async (): Promise<IndexStats> => ({ backend: 'sqlite', images: images.size, texts: texts.size, countsExact: true, index: { kind: 'hnswlib', M: 16, efConstruction: 200, efSearch: 64, capacity: 1024 } }),
    async close () { fake.closed = true }
  }
  return fake
}
