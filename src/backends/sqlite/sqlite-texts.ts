/** The text pool of the SQLite backend. */
import { randomUUID } from 'node:crypto'
import { ConflictError } from '../../core/errors.js'
import type { TableIndex, VectorRow } from './hnsw/index.js'
import type { Store } from './store/index.js'
import { contentId } from '../../core/content-id.js'
import type { Metadata } from '../../core/types.js'
import type { NewText, TextCollection, WriteOutcome } from '../ports.js'
import { vectorsByModel } from '../model-vectors.js'
import { SqliteCollection } from './sqlite-collection.js'

export class SqliteTexts extends SqliteCollection implements TextCollection {
  constructor (store: Store, index: TableIndex) {
    super(store, 'texts', index)
  }

  async add (rows: NewText[]): Promise<WriteOutcome[]> {
    const texts = this.store.texts
    const standbyRows = this.store.standbyRows('texts')
    const added: Array<VectorRow & { metadata: Metadata }> = []
    const addedStandby: Array<ReturnType<NonNullable<typeof standbyRows>['put']>> = []
    const outcomes = this.store.transaction(() => rows.map((row): WriteOutcome => {
      const stored = texts.idBySha(row.sha256)
      if (stored !== undefined) return { status: 'duplicate', id: stored }
      if (row.id !== undefined && texts.ref(row.id) !== undefined) {
        throw new ConflictError(`id "${row.id}" is already used by another text; delete it first or choose another id`)
      }
      let id = row.id ?? contentId(row.sha256)
      if (row.id === undefined && texts.ref(id) !== undefined) id = randomUUID()
      const v = vectorsByModel(row, this.store.modelId, this.store.standby?.modelId)
      const ref = texts.insert({ id, text: row.text, sha256: row.sha256, metadata: row.metadata, embedding: v.active, template: row.template ?? null })
      added.push({ ...ref, vector: v.active, metadata: row.metadata })
      if (v.standby !== undefined && standbyRows !== undefined) addedStandby.push(standbyRows.put(id, v.standby))
      return { status: 'indexed', id }
    }))
    this.indexMetadata(added)
    const index = this.index
    await Promise.all([added.length > 0 ? index.append(added).catch(() => {}) : undefined, this.appendStandby(addedStandby)])
    return outcomes
  }
}
