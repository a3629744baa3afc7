/**
 * Wires the core together: encoder (src/ml) → SQLite store → two HNSW indexes → job runner,
 * and implements the `Services` contract the HTTP layer, the CLI and the benchmarks use.
 */
import { randomUUID } from 'node:crypto'
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { BadRequestError, NotReadyError } from '../errors.js'
import { openVectorIndex, type TableIndex } from '../index/index.js'
import { MAX_EMBED_IMAGES, MAX_EMBED_TEXTS } from '../limits.js'
import { JobRunner, removeStaleStaging, resolveJobSource, stageUploads, type CoreLogger, type UploadFile } from '../jobs/index.js'
import { loadEncoder } from '../ml/index.js'
import { idProblem, mapStorageError, openStore, type NewJob, type Store } from '../storage/index.js'
import { classify } from './classify.js'
import type { ServicesConfig } from './config.js'
import { isPlainObject, type Core } from './core.js'
import { markDemoPoolQueued, planDemoPool } from './demo-pool.js'
import { ingestImages } from './ingest-images.js'
import { search } from './search.js'
import { addTexts } from './texts.js'
import type { IngestItem, JobSource, Services } from './types.js'

/** most items in one addImages call (embed calls: MAX_EMBED_TEXTS / MAX_EMBED_IMAGES in src/limits.ts) */
export const MAX_BATCH_ITEMS = 1000
const TEXT_POOL_BATCH = 256

/**
 * Opens the services: loads the model, opens DATA_DIR (refusing one built by another model,
 * ConflictError 409), loads or rebuilds the indexes, resumes unfinished index jobs and, on the
 * very first start, queues the demo pool. Resolves when search is ready.
 */
export async function openServices (config: ServicesConfig, logger: CoreLogger): Promise<Services> {
  const load = config.loadEncoder ?? loadEncoder
  const encoder = await load({
    modelDir: config.modelDir,
    executionProvider: config.executionProvider,
    workers: config.encoderWorkers,
    threads: config.encoderThreads,
    maxImagePixels: config.maxImagePixels,
    ...(config.indexJobNice === undefined ? {} : { backgroundNice: config.indexJobNice }),
    logger
  })
  let store: Store | undefined
  const opened: TableIndex[] = []
  try {
    store = openStore(config.dataDir, { modelId: encoder.config.modelId, dim: encoder.config.embeddingDim })
    const indexOpts = { ...config.hnsw, checkpointEvery: config.checkpointEvery, logger }
    opened.push(await openVectorIndex(store, 'images', path.join(config.dataDir, 'images.hnsw'), indexOpts))
    opened.push(await openVectorIndex(store, 'texts', path.join(config.dataDir, 'texts.hnsw'), indexOpts))
  } catch (err) {
    for (const t of opened) await t.close().catch(() => {})
    store?.close()
    await encoder.close()
    throw err
  }
  const core: Core = { encoder, store, images: opened[0]!, texts: opened[1]!, dim: encoder.config.embeddingDim, logger }
  try {
    const services = await startServices(core, config)
    logger.info({ model: encoder.config.modelId, dim: core.dim, provider: encoder.provider, images: core.images.size, texts: core.texts.size }, 'services ready')
    return services
  } catch (err) {
    for (const t of opened) await t.close().catch(() => {})
    store.close()
    await encoder.close()
    throw err
  }
}

async function startServices (core: Core, config: ServicesConfig): Promise<Services> {
  const { store, encoder, logger } = core
  const runner = new JobRunner({
    store,
    logger,
    // jobs are bulk work: their images decode in the background process, so searches keep the CPU
    ingest: async (items, opts) => await ingestImages(core, items, { ...opts, background: true }),
    ...(config.jobBatchSize === undefined ? {} : { batchSize: config.jobBatchSize }),
    ...(config.maxFileBytes === undefined ? {} : { maxFileBytes: config.maxFileBytes })
  })
  const background = new Set<Promise<unknown>>()
  let closed = false
  let closing: Promise<void> | undefined

  const alive = (): void => {
    if (closed) throw new NotReadyError('the service is shutting down')
  }
  const createStoredJob = (job: NewJob): string => {
    try { store.jobs.create(job) } catch (err) { mapStorageError(err) }
    runner.enqueue(job.id)
    return job.id
  }

  await removeStaleStaging(store).catch((err: unknown) => { logger.warn({ err }, 'could not clean DATA_DIR/uploads') })
  if (config.demoPoolDir !== undefined && config.demoPoolDir !== '') {
    const plan = await planDemoPool(config.demoPoolDir, store, logger)
    if (plan !== undefined) {
      const id = randomUUID()
      if (plan.items.length > 0) createStoredJob({ id, kind: 'items', source: { demoPool: plan.root }, root: plan.root, items: plan.items })
      markDemoPoolQueued(store, id)
      logger.info({ job: id, images: plan.items.length, labels: plan.labels.length }, 'demo pool queued')
      if (plan.labels.length > 0) {
        // the label is the text (image → text answers "pizza"); the model's template only shapes its vector
        const texts = plan.labels.map((label) => ({ text: label, metadata: { label } }))
        const template = { template: encoder.config.promptTemplate }
        const task = (async () => {
          for (let i = 0; i < texts.length && !closed; i += TEXT_POOL_BATCH) await addTexts(core, texts.slice(i, i + TEXT_POOL_BATCH), template)
        })().catch((err: unknown) => { logger.warn({ err }, 'demo pool text labels could not be added') })
        background.add(task)
        void task.finally(() => background.delete(task))
      }
    }
  }
  runner.start()

  const checkBatch = (list: unknown, name: string, max = MAX_BATCH_ITEMS): void => {
    if (!Array.isArray(list) || list.length === 0) throw new BadRequestError(`${name} must be a non-empty array`)
    if (list.length > max) throw new BadRequestError(`${name} has ${list.length} entries; at most ${max}`)
  }

  const services: Services = {
    model: encoder.config,
    ready: () => !closed,

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
    getImage (id) {
      alive()
      return store.images.get(id)
    },
    getThumbnail (id) {
      alive()
      const bytes = store.images.thumbnail(id)
      return bytes === undefined ? undefined : { bytes, contentType: 'image/webp' }
    },
    deleteImage (id) {
      alive()
      const ref = store.transaction(() => store.images.remove(id))
      if (ref === undefined) return false
      core.images.remove(ref) // synchronously: no search after this returns can see it
      return true
    },
    async addTexts (items) {
      alive()
      return await addTexts(core, items)
    },
    deleteText (id) {
      alive()
      const ref = store.transaction(() => store.texts.remove(id))
      if (ref === undefined) return false
      core.texts.remove(ref)
      return true
    },
    async search (req) {
      alive()
      return await search(core, req)
    },
    async classify (image, labels, template) {
      alive()
      return await classify(core, image, labels, template)
    },
    createJob (source: JobSource) {
      alive()
      const resolved = resolveJobSource(source, config.importDir)
      const id = randomUUID()
      return createStoredJob(resolved.kind === 'items'
        ? { id, kind: 'items', source: { items: resolved.items.length }, root: resolved.root, items: resolved.items }
        : { id, kind: 'directory', source: { directory: resolved.directory }, root: resolved.root })
    },
    async createUploadJob (files) {
      alive()
      checkUploads(files)
      const id = randomUUID()
      const { root, items } = await stageUploads(config.dataDir, id, files)
      try {
        return createStoredJob({ id, kind: 'upload', source: { upload: files.length }, root, cleanup: true, items })
      } catch (err) {
        await rm(root, { recursive: true, force: true }).catch(() => {})
        throw err
      }
    },
    getJob (id) {
      alive()
      return store.jobs.view(id)
    },
    cancelJob (id) {
      alive()
      return runner.cancel(id)
    },
    async waitForJob (id) {
      alive()
      return await runner.waitFor(id)
    },
    stats () {
      alive()
      const p = core.images.params
      return { images: store.images.count(), texts: store.texts.count(), hnsw: { M: p.M, efConstruction: p.efConstruction, efSearch: p.efSearch, capacity: core.images.capacity } }
    },
    async close () {
      closing ??= (async () => {
        closed = true
        await runner.close()
        await Promise.allSettled([...background])
        await core.images.close()
        await core.texts.close()
        store.close()
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

