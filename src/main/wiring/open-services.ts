/**
 * Wires the core together: encoder (src/ml) → backend (src/backends: rows, vectors, jobs) → job
 * runner, and implements the `Services` contract the HTTP layer, the CLI and the benchmarks use.
 */
import { randomUUID } from 'node:crypto'
import { openBackend } from './open-backend.js'
import type { Backend, NewJob } from '../../backends/ports.js'
import { BadRequestError, NotReadyError } from '../../core/errors.js'
import { MAX_EMBED_IMAGES, MAX_EMBED_TEXTS } from '../../core/limits.js'
import { resolveJobSource, type UploadFile } from '../../jobs/index.js'
import { idProblem } from '../../core/ids.js'
import type { Logger } from '../../core/types.js'
import { classify } from '../../services/classify.js'
import type { ServicesConfig } from './services-config.js'
import { loadConfiguredEncoder } from './load-encoder.js'
import { isPlainObject, type Core } from '../../services/core.js'
import { markDemoPoolQueued, planDemoPool } from '../../services/demo-pool.js'
import { ingestImages } from '../../services/ingest-images.js'
import { openJobs } from './open-jobs.js'
import { search } from '../../services/search.js'
import { addTexts } from '../../services/texts.js'
import { deleteRows, listRows } from '../../services/rows.js'
import type { IngestItem, JobSource, Services } from '../../services/types.js'

/** most items in one addImages call (embed calls: MAX_EMBED_TEXTS / MAX_EMBED_IMAGES in src/core/limits.ts) */
export const MAX_BATCH_ITEMS = 1000
const TEXT_POOL_BATCH = 256

/**
 * Opens the services: loads the model, opens the backend (refusing one built by another model,
 * ConflictError 409), resumes unfinished index jobs and, on the very first start, queues the
 * demo pool. Resolves when search is ready.
 */
export async function openServices (config: ServicesConfig, logger: Logger): Promise<Services> {
  const encoder = await loadConfiguredEncoder(config, logger)
  let backend: Backend
  try {
    backend = await (config.openBackend ?? openBackend)(config, { modelId: encoder.config.modelId, dim: encoder.config.embeddingDim }, logger)
  } catch (err) {
    await encoder.close()
    throw err
  }
  const core: Core = { encoder, backend, dim: encoder.config.embeddingDim, logger }
  try {
    const services = await startServices(core, config)
    const [images, texts] = await Promise.all([backend.images.count(), backend.texts.count()])
    logger.info({ model: encoder.config.modelId, dim: core.dim, provider: encoder.provider, backend: backend.name, images, texts }, 'services ready')
    return services
  } catch (err) {
    await backend.close().catch(() => {})
    await encoder.close()
    throw err
  }
}

async function startServices (core: Core, config: ServicesConfig): Promise<Services> {
  const { backend, encoder, logger } = core
  const jobs = await openJobs(core, config)
  const background = new Set<Promise<unknown>>()
  let closed = false
  let closing: Promise<void> | undefined

  const alive = (): void => {
    if (closed) throw new NotReadyError('the service is shutting down')
  }
  const createStoredJob = async (job: NewJob): Promise<string> => {
    await jobs.submit(job)
    return job.id
  }

  try {
    if (config.demoPoolDir !== undefined && config.demoPoolDir !== '') {
      const plan = await planDemoPool(config.demoPoolDir, backend, logger)
      if (plan !== undefined) {
        const id = randomUUID()
        if (plan.items.length > 0) await createStoredJob({ id, kind: 'items', source: { demoPool: plan.root }, root: plan.root, items: plan.items })
        await markDemoPoolQueued(backend, id)
        logger.info({ job: id, images: plan.items.length, labels: plan.labels.length, demoPool: plan.root },
          'demo pool queued: this is the first start, so the demo pool is being added to have something to search (tagged {"demo": true}; remove it with DELETE /v1/images?filter={"demo":true}, or start with DEMO_POOL= to index only your own images)')
        if (plan.labels.length > 0) {
          // the label is the text (image → text answers "pizza"); the model's template only shapes its vector
          const texts = plan.labels.map((label) => ({ text: label, metadata: { label, demo: true } }))
          const template = { template: encoder.config.promptTemplate }
          const task = (async () => {
            for (let i = 0; i < texts.length && !closed; i += TEXT_POOL_BATCH) await addTexts(core, texts.slice(i, i + TEXT_POOL_BATCH), template)
          })().catch((err: unknown) => { logger.warn({ err }, 'demo pool text labels could not be added') })
          background.add(task)
          void task.finally(() => background.delete(task))
        }
      }
    }
    await jobs.start()
  } catch (err) {
    closed = true
    await jobs.close().catch(() => {})
    throw err
  }

  const checkBatch = (list: unknown, name: string, max = MAX_BATCH_ITEMS): void => {
    if (!Array.isArray(list) || list.length === 0) throw new BadRequestError(`${name} must be a non-empty array`)
    if (list.length > max) throw new BadRequestError(`${name} has ${list.length} entries; at most ${max}`)
  }

  const services: Services = {
    model: encoder.config,
    ready: () => !closed,
    async health () {
      if (closed) return { ok: false, reason: 'the service is shutting down' }
      return await backend.health()
    },

    async embedTexts (texts) {
      alive()
      checkBatch(texts, 'texts', MAX_EMBED_TEXTS)
      texts.forEach((t, i) => { if (typeof t !== 'string' || t.trim() === '') throw new BadRequestError(`texts[${i}] must be a non-empty string`) })
      return await encoder.encodeTexts(texts)
    },
    async embedImages (images) {
      alive()
      checkBatch(images, 'images', MAX_EMBED_IMAGES)
      images.forEach((b, i) => { if (!Buffer.isBuffer(b) || b.length === 0) throw new BadRequestError(`images[${i}] must be non-empty image bytes`) })
      return await encoder.encodeImages(images)
    },
    async addImages (items: IngestItem[]) {
      alive()
      checkBatch(items, 'items')
      return await ingestImages(core, items)
    },
    async getImage (id) {
      alive()
      return await backend.images.get(id)
    },
    async getThumbnail (id) {
      alive()
      const bytes = await backend.images.thumbnail(id)
      return bytes === undefined ? undefined : { bytes, contentType: 'image/webp' }
    },
    async deleteImage (id) {
      alive()
      return await backend.images.remove(id)
    },
    async addTexts (items, opts) {
      alive()
      return await addTexts(core, items, opts)
    },
    async listRows (collection, opts) {
      alive()
      return await listRows(core, collection, opts)
    },
    async deleteRows (collection, filter) {
      alive()
      return await deleteRows(core, collection, filter)
    },
    async deleteText (id) {
      alive()
      return await backend.texts.remove(id)
    },
    async search (req) {
      alive()
      return await search(core, req)
    },
    async classify (image, labels, template) {
      alive()
      return await classify(core, image, labels, template)
    },
    async createJob (source: JobSource) {
      alive()
      const resolved = resolveJobSource(source, config.importDir)
      const id = randomUUID()
      return await createStoredJob(resolved.kind === 'items'
        ? { id, kind: 'items', source: { items: resolved.items.length }, root: resolved.root, items: resolved.items }
        : { id, kind: 'directory', source: { directory: resolved.directory, ...(resolved.idFromPath ? { idFromPath: true } : {}) }, root: resolved.root })
    },
    async createUploadJob (files) {
      alive()
      checkUploads(files)
      const id = randomUUID()
      const { root, items } = await jobs.stageUploads(id, files)
      try {
        return await createStoredJob({ id, kind: 'upload', source: { upload: files.length }, root, cleanup: true, items })
      } catch (err) {
        await jobs.unstage(id, root)
        throw err
      }
    },
    async getJob (id) {
      alive()
      return await backend.jobs.view(id)
    },
    async listJobs (opts) {
      alive()
      return await backend.jobs.list(opts)
    },
    async cancelJob (id) {
      alive()
      return await jobs.cancel(id)
    },
    async waitForJob (id) {
      alive()
      return await jobs.waitFor(id)
    },
    async stats () {
      alive()
      const [images, texts] = await Promise.all([backend.images.count(), backend.texts.count()])
      return { backend: backend.name, images, texts, index: backend.indexInfo() }
    },
    async close () {
      closing ??= (async () => {
        closed = true
        await jobs.close()
        await Promise.allSettled([...background])
        await backend.close()
        await encoder.close()
        logger.info('services closed')
      })()
      await closing
    }
  }
  return services
}

function checkUploads (files: UploadFile[]): void {
  if (!Array.isArray(files) || files.length === 0) throw new BadRequestError('files must be a non-empty array')
  const ids = new Map<string, number>()
  files.forEach((f, i) => {
    if (!isPlainObject(f) || !Buffer.isBuffer(f.bytes)) throw new BadRequestError(`files[${i}] must have the file's bytes`)
    if (typeof f.filename !== 'string') throw new BadRequestError(`files[${i}].filename must be a string`)
    if (f.metadata !== undefined && !isPlainObject(f.metadata)) throw new BadRequestError(`files[${i}].metadata must be an object`)
    if (f.id !== undefined) {
      const problem = idProblem(f.id)
      if (problem !== undefined) throw new BadRequestError(`files[${i}].id ${problem}`)
      const first = ids.get(f.id)
      if (first !== undefined) throw new BadRequestError(`files[${i}].id "${f.id}" repeats files[${first}].id`)
      ids.set(f.id, i)
    }
  })
}

