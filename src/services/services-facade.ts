/**
 * The `Services` contract over an opened encoder, backend and job executor: what the HTTP layer,
 * the CLI and the benchmarks call. It checks the arguments of each call and refuses calls once
 * closing has begun; src/main/wiring/open-services.ts builds it.
 */
import { randomUUID } from 'node:crypto'
import type { NewJob, VectorCollection } from '../backends/ports.js'
import { BadRequestError, ConflictError, NotReadyError } from '../core/errors.js'
import { idProblem } from '../core/ids.js'
import { MAX_EMBED_IMAGES, MAX_EMBED_TEXTS } from '../core/limits.js'
import { resolveJobSource, type JobExecutor, type UploadFile } from '../jobs/index.js'
import { classify } from './classify.js'
import { isPlainObject, type Core } from './core.js'
import { ingestImages } from './ingest-images.js'
import { search } from './search.js'
import { addTexts } from './texts.js'
import type { BackupService } from './backups.js'
import type { ModelService } from './model-switch.js'
import { deleteRows, listRows } from './rows.js'
import type { IngestItem, JobSource, Services } from './types.js'

/** most items in one addImages call (embed calls: MAX_EMBED_TEXTS / MAX_EMBED_IMAGES in src/core/limits.ts) */
export const MAX_BATCH_ITEMS = 1000

export interface FacadeOptions {
  /** root under which directory jobs may read files */
  importDir: string
  /** work started alongside the services (the demo pool's text labels): awaited on close */
  background: Set<Promise<unknown>>
  /** set by close(): background work checks it to stop early */
  closed: { value: boolean }
  /** online backups (src/services/backups.ts); closed with the services */
  backups?: BackupService
  /** model switches (src/services/model-switch.ts); closed with the services */
  models?: ModelService
}

/** The Services calls that go to the backend, encoder or jobs once the facade is alive (a test checks it covers Services). */
type Calls = Omit<Services, 'model' | 'standbyModel' | 'ready' | 'health' | 'close' | 'backups' | 'models'>

export function servicesFacade (core: Core, jobs: JobExecutor, opts: FacadeOptions): Services {
  const { backend, logger } = core
  const { closed } = opts
  let closing: Promise<void> | undefined

  const createStoredJob = async (job: NewJob): Promise<string> => {
    await jobs.submit(job)
    return job.id
  }

  const calls: Calls = {
    async embedTexts (texts) {
      checkBatch(texts, 'texts', MAX_EMBED_TEXTS)
      texts.forEach((t, i) => { if (typeof t !== 'string' || t.trim() === '') throw new BadRequestError(`texts[${i}] must be a non-empty string`) })
      return await core.encoder.encodeTexts(texts)
    },
    async embedImages (images) {
      checkBatch(images, 'images', MAX_EMBED_IMAGES)
      images.forEach((b, i) => { if (!Buffer.isBuffer(b) || b.length === 0) throw new BadRequestError(`images[${i}] must be non-empty image bytes`) })
      return await core.encoder.encodeImages(images)
    },
    async addImages (items: IngestItem[]) {
      checkBatch(items, 'items')
      return await ingestImages(core, items)
    },
    getImage: async (id) => await backend.images.get(id),
    async getThumbnail (id) {
      const bytes = await backend.images.thumbnail(id)
      return bytes === undefined ? undefined : { bytes, contentType: 'image/webp' }
    },
    deleteImage: async (id) => await backend.images.remove(id),
    addTexts: async (items, opts) => await addTexts(core, items, opts),
    listRows: async (collection, opts) => await listRows(core, collection, opts),
    deleteRows: async (collection, filter) => await deleteRows(core, collection, filter),
    deleteText: async (id) => await backend.texts.remove(id),
    search: async (req) => await search(core, req),
    classify: async (image, labels, template) => await classify(core, image, labels, template),
    async createJob (source: JobSource) {
      const resolved = resolveJobSource(source, opts.importDir)
      const id = randomUUID()
      return await createStoredJob(resolved.kind === 'items'
        ? { id, kind: 'items', source: { items: resolved.items.length }, root: resolved.root, items: resolved.items }
        : { id, kind: 'directory', source: { directory: resolved.directory, ...(resolved.idFromPath ? { idFromPath: true } : {}) }, root: resolved.root })
    },
    async createUploadJob (files) {
      if (Array.isArray(files) && files.length === 0) throw new BadRequestError('files must be a non-empty array')
      const id = randomUUID()
      const { root, items } = await jobs.stageUploads(id, checkedUploads(files))
      try {
        if (items.length === 0) throw new BadRequestError('no file in the upload: send one or more file parts')
        return await createStoredJob({ id, kind: 'upload', source: { upload: items.length }, root, cleanup: true, items })
      } catch (err) {
        await jobs.unstage(id, root)
        throw err
      }
    },
    getJob: async (id) => await backend.jobs.view(id),
    listJobs: async (opts) => await backend.jobs.list(opts),
    cancelJob: async (id) => await jobs.cancel(id),
    async resumeJob (id) {
      if (jobs.resume === undefined) throw new BadRequestError('resuming a failed job needs cluster mode (DATABASE_URL): in embedded mode, create the job again')
      const { view, resumed } = await jobs.resume(id)
      if (view !== undefined && !resumed) throw new ConflictError(`index job "${id}" is ${view.status}: only a failed job can be resumed`)
      return view
    },
    waitForJob: async (id) => await jobs.waitFor(id),
    async stats () {
      const count = async (c: VectorCollection): Promise<{ n: number, exact: boolean }> => await c.displayCount?.() ?? { n: await c.count(), exact: true }
      const [images, texts] = await Promise.all([count(backend.images), count(backend.texts)])
      return { backend: backend.name, images: images.n, texts: texts.n, countsExact: images.exact && texts.exact, index: backend.indexInfo() }
    }
  }

  return {
    ...guardAll(calls, () => { if (closed.value) throw new NotReadyError('the service is shutting down') }),
    // getters: a model swap replaces the encoders in `core`
    get model () { return core.encoder.config },
    get standbyModel () { return core.standbyEncoder?.config },
    ...(opts.backups === undefined ? {} : { backups: opts.backups }),
    ...(opts.models === undefined ? {} : { models: opts.models }),
    ready: () => !closed.value,
    async health () {
      if (closed.value) return { ok: false, reason: 'the service is shutting down' }
      return await backend.health()
    },
    async close () {
      closing ??= (async () => {
        closed.value = true
        await opts.backups?.close()
        await opts.models?.close()
        await jobs.close()
        await Promise.allSettled([...opts.background])
        await backend.close()
        await core.encoder.close()
        logger.info('services closed')
      })()
      await closing
    }
  }
}

/** Each call first runs `check` (which throws once the services are closing). */
function guardAll<T extends Record<string, (...args: never[]) => Promise<unknown>>> (calls: T, check: () => void): T {
  const guarded: Record<string, unknown> = {}
  for (const [name, call] of Object.entries(calls)) {
    guarded[name] = async (...args: never[]) => {
      check()
      return await call(...args)
    }
  }
  return guarded as T
}

function checkBatch (list: unknown, name: string, max = MAX_BATCH_ITEMS): void {
  if (!Array.isArray(list) || list.length === 0) throw new BadRequestError(`${name} must be a non-empty array`)
  if (list.length > max) throw new BadRequestError(`${name} has ${list.length} entries; at most ${max}`)
}

/** The files, each checked as it comes (a streamed upload is checked before its bytes are read). */
async function * checkedUploads (files: UploadFile[] | AsyncIterable<UploadFile>): AsyncGenerator<UploadFile> {
  if (!Array.isArray(files) && !isAsyncIterable(files)) throw new BadRequestError('files must be a non-empty array')
  const ids = new Map<string, number>()
  let i = 0
  for await (const f of files) {
    if (!isPlainObject(f) || (!Buffer.isBuffer(f.bytes) && !isAsyncIterable(f.bytes))) throw new BadRequestError(`files[${i}] must have the file's bytes`)
    if (typeof f.filename !== 'string') throw new BadRequestError(`files[${i}].filename must be a string`)
    if (f.metadata !== undefined && !isPlainObject(f.metadata)) throw new BadRequestError(`files[${i}].metadata must be an object`)
    if (f.id !== undefined) {
      const problem = idProblem(f.id)
      if (problem !== undefined) throw new BadRequestError(`files[${i}].id ${problem}`)
      const first = ids.get(f.id)
      if (first !== undefined) throw new BadRequestError(`files[${i}].id "${f.id}" repeats files[${first}].id`)
      ids.set(f.id, i)
    }
    yield f
    i++
  }
}

const isAsyncIterable = (x: unknown): x is AsyncIterable<unknown> => x !== null && typeof x === 'object' && Symbol.asyncIterator in x
