/**
 * The embedded backend's model slots (ports.ts ModelSlots): the standby model's vectors in SQLite
 * (store/standby-rows.ts) and their own HNSW indexes in this process (DATA_DIR/standby-<table>.hnsw).
 * The swap is one SQLite transaction plus, in the same tick, an exchange of the index objects, so
 * no search or write in this process ever sees one model's rows with the other's index.
 */
import path from 'node:path'
import { ConflictError } from '../../core/errors.js'
import type { CollectionName, ModelSlots, ReembedImage, ReembedText, StandbyRecord, BackendIdentity } from '../ports.js'
import { openVectorIndex, removeSnapshot, type OpenVectorIndexOptions, type TableIndex } from './hnsw/index.js'
import type { Store } from './store/index.js'
import type { SqliteCollection } from './sqlite-collection.js'

/** the snapshot file of a table's index in each slot */
export function indexFile (dataDir: string, table: CollectionName, slot: 'active' | 'standby'): string {
  return path.join(dataDir, slot === 'active' ? `${table}.hnsw` : `standby-${table}.hnsw`)
}

export class SqliteModelSlots implements ModelSlots {
  constructor (private readonly store: Store, private readonly collections: Record<CollectionName, SqliteCollection>, private readonly indexOpts: OpenVectorIndexOptions) {}

  /** Opens the standby indexes of a standby slot recorded in the store (at open, or when a switch begins). */
  async openStandbyIndexes (): Promise<void> {
    const rec = this.store.standby
    if (rec === undefined) return
    for (const t of ['images', 'texts'] as const) {
      if (this.collections[t].standby !== undefined) continue
      const source = { table: (n: CollectionName) => this.store.standbyRows(n)! }
      this.collections[t].standby = await openVectorIndex(source, t, indexFile(this.store.dataDir, t, 'standby'), { ...this.indexOpts, modelId: rec.modelId })
    }
  }

  active (): BackendIdentity & { modelDir?: string } {
    return { modelId: this.store.modelId, dim: this.store.dim, ...(this.store.modelDir === undefined ? {} : { modelDir: this.store.modelDir }) }
  }

  standby (): StandbyRecord | undefined { return this.store.standby }

  async beginStandby (rec: StandbyRecord): Promise<void> {
    const current = this.store.standby
    if (current !== undefined && (current.modelId !== rec.modelId || current.dim !== rec.dim)) await this.dropStandby()
    this.store.transaction(() => { this.store.saveStandby(rec) })
    await this.openStandbyIndexes()
  }

  async missing (table: CollectionName, limit: number): Promise<string[]> {
    return this.store.standbyRows(table)?.missing(limit) ?? []
  }

  async missingCount (table: CollectionName): Promise<number> {
    return this.store.standbyRows(table)?.missingCount() ?? 0
  }

  async weakImages (minSide: number): Promise<Array<{ id: string, sha256: string, source: string | null }>> {
    return this.store.images.weak(minSide)
  }

  async images (ids: string[]): Promise<ReembedImage[]> { return this.store.images.forReembed(ids) }
  async texts (ids: string[]): Promise<ReembedText[]> { return this.store.texts.forReembed(ids) }

  async putStandby (table: CollectionName, rows: Array<{ id: string, embedding: Float32Array }>, model?: string): Promise<void> {
    const standbyRows = this.store.standbyRows(table)
    if (standbyRows === undefined) throw new Error('there is no standby model')
    const standby = this.store.standby
    if (model !== undefined && standby?.modelId !== model) throw new ConflictError(`the standby model is now ${standby?.modelId ?? 'none'}, not ${model}`)
    const active = this.store.table(table)
    const added = this.store.transaction(() => rows.flatMap((r) => active.ref(r.id) === undefined ? [] : [standbyRows.put(r.id, r.embedding)]))
    await this.collections[table].appendStandby(added)
  }

  async standbyEmbedding (table: CollectionName, id: string): Promise<Float32Array | undefined> {
    return this.store.standbyRows(table)?.embedding(id)
  }

  async swap (onSwapped?: () => void): Promise<StandbyRecord> {
    const previous = this.store.swapModels()
    // same tick as the commit: every collection now pairs the new active rows with their index
    for (const t of ['images', 'texts'] as const) {
      const c = this.collections[t]
      const [active, standby] = [c.standby!, c.index]
      c.index = active
      c.standby = standby
      active.modelId = this.store.modelId
      standby.modelId = previous.modelId
      c.reindexMetadata() // every row now has the other slot's label
    }
    onSwapped?.()
    // the snapshots under the new file names are written in the background (queued behind inserts;
    // close() flushes them): the swap itself is the transaction above, and waiting for two index
    // files to be written would only delay the answer. A crash before they are written rebuilds
    // the indexes from SQLite at the next start (each snapshot records its model).
    for (const t of ['images', 'texts'] as const) {
      const c = this.collections[t]
      void c.index.moveTo(indexFile(this.store.dataDir, t, 'active'))
      void c.standby!.moveTo(indexFile(this.store.dataDir, t, 'standby'))
    }
    return previous
  }

  async dropStandby (): Promise<void> {
    this.store.dropStandby()
    for (const t of ['images', 'texts'] as const) {
      const index: TableIndex | undefined = this.collections[t].standby
      this.collections[t].standby = undefined
      if (index !== undefined) await index.close()
      await removeSnapshot(indexFile(this.store.dataDir, t, 'standby'))
    }
  }
}
