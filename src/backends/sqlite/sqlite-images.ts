/** The images collection of the SQLite backend: rows, thumbnails and the one atomic ingest write. */
import { randomUUID } from 'node:crypto'
import type { VectorRow } from './hnsw/index.js'
import type { TableIndex } from './hnsw/index.js'
import type { Store } from './store/index.js'
import type { ImageRecord, Metadata } from '../../core/types.js'
import { contentId } from '../../core/content-id.js'
import { resolveItemOutcomes } from '../job-outcomes.js'
import { vectorsByModel } from '../model-vectors.js'
import type { ImageCollection, JobProgress, NewImage, WriteOutcome } from '../ports.js'
import { SqliteCollection } from './sqlite-collection.js'

export class SqliteImages extends SqliteCollection implements ImageCollection {
  constructor (store: Store, index: TableIndex) {
    super(store, 'images', index)
  }

  async get (id: string): Promise<ImageRecord | undefined> {
    return this.store.images.get(id)
  }

  async thumbnail (id: string): Promise<Buffer | undefined> {
    return this.store.images.thumbnail(id)
  }

  async add (rows: NewImage[], progress?: JobProgress): Promise<WriteOutcome[]> {
    const images = this.store.images
    const standbyRows = this.store.standbyRows('images')
    const added: Array<VectorRow & { metadata: Metadata }> = []
    const addedStandby: Array<ReturnType<NonNullable<typeof standbyRows>['put']>> = []
    const outcomes = this.store.transaction(() => {
      const out = rows.map((row): WriteOutcome => {
        const stored = images.idBySha(row.sha256)
        if (stored !== undefined) return { status: 'duplicate', id: stored }
        if (row.id !== undefined && images.ref(row.id) !== undefined) {
          return { status: 'failed', code: 'CONFLICT', error: `id "${row.id}" is already used by another image; delete it first or choose another id` }
        }
        let id = row.id ?? contentId(row.sha256)
        if (row.id === undefined && images.ref(id) !== undefined) id = randomUUID()
        const v = vectorsByModel(row, this.store.modelId, this.store.standby?.modelId)
        const ref = images.insert({
          id,
          sha256: row.sha256,
          width: row.width,
          height: row.height,
          metadata: row.metadata,
          embedding: v.active,
          thumbnail: row.thumbnail,
          source: row.source,
          ...(row.preview === undefined ? {} : { preview: row.preview }),
          ...(row.original === undefined ? {} : { original: row.original })
        })
        added.push({ ...ref, vector: v.active, metadata: row.metadata })
        if (v.standby !== undefined && standbyRows !== undefined) addedStandby.push(standbyRows.put(id, v.standby))
        return { status: 'indexed', id }
      })
      if (progress !== undefined) {
        this.store.jobs.complete(progress.jobId, resolveItemOutcomes(progress.outcomes, out))
      }
      return out
    })
    // committed: searchable once the index has them (a failure here is logged and replayed at the next start)
    this.indexMetadata(added)
    const index = this.index
    await Promise.all([added.length > 0 ? index.append(added).catch(() => {}) : undefined, this.appendStandby(addedStandby)])
    return outcomes
  }
}
