/** The text pool of the SQLite backend. */
import { randomUUID } from 'node:crypto'
import { ConflictError } from '../../core/errors.js'
import type { TableIndex, VectorRow } from './hnsw/index.js'
import type { Store } from './store/index.js'
import { contentId } from '../../core/content-id.js'
import type { Metadata } from '../../core/types.js'
import type { NewText, TextCollection, WriteOutcome } from '../ports.js'
import { SqliteCollection } from './sqlite-collection.js'

export class SqliteTexts extends SqliteCollection implements TextCollection {
  constructor (store: Store, index: TableIndex) {
    super(store, store.texts, index)
  }

  async add (rows: NewText[]): Promise<WriteOutcome[]> {
    const texts = this.store.texts
    const added: Array<VectorRow & { metadata: Metadata }> = []
    const outcomes = this.store.transaction(() => rows.map((row): WriteOutcome => {
      const stored = texts.idBySha(row.sha256)
      if (stored !== undefined) return { status: 'duplicate', id: stored }
      if (row.id !== undefined && texts.ref(row.id) !== undefined) {
        throw new ConflictError(`id "${row.id}" is already used by another text; delete it first or choose another id`)
      }
      let id = row.id ?? contentId(row.sha256)
      if (row.id === undefined && texts.ref(id) !== undefined) id = randomUUID()
      const ref = texts.insert({ id, text: row.text, sha256: row.sha256, metadata: row.metadata, embedding: row.embedding })
      added.push({ ...ref, vector: row.embedding, metadata: row.metadata })
      return { status: 'indexed', id }
    }))
    this.indexMetadata(added)
    if (added.length > 0) await this.index.append(added).catch(() => {})
    return outcomes
  }
}
