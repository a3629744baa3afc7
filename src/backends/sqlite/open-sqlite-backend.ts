/**
 * The embedded backend: one SQLite file (the source of truth) and two HNSW indexes in this
 * process's memory, derived from it (snapshots in DATA_DIR, replayed or rebuilt at open).
 */
import path from 'node:path'
import { SqliteBackups } from './backup/index.js'
import { openVectorIndex, type TableIndex } from './hnsw/index.js'
import type { HnswParams } from './hnsw/index.js'
import { openStore, type Store } from './store/index.js'
import type { Logger } from '../../core/types.js'
import type { Backend, BackendHealth, BackendIdentity, IndexInfo } from '../ports.js'
import { SqliteImages } from './sqlite-images.js'
import { SqliteJobs } from './sqlite-jobs.js'
import { SqliteTexts } from './sqlite-texts.js'
import { indexFile, SqliteModelSlots } from './sqlite-model-slots.js'
import type { OpenVectorIndexOptions } from './hnsw/index.js'

export interface SqliteBackendOptions {
  /** DATA_DIR: align-search.db, images.hnsw, texts.hnsw */
  dataDir: string
  hnsw?: Partial<HnswParams>
  /** index snapshot after this many inserts + deletes (default 1000) */
  checkpointEvery?: number
  /** where backups are written (BACKUP_DIR; default dataDir/backups) */
  backupDir?: string
  logger?: Logger
}

export class SqliteBackend implements Backend {
  readonly name = 'sqlite' as const
  readonly images: SqliteImages
  readonly texts: SqliteTexts
  readonly jobs: SqliteJobs
  readonly backups: SqliteBackups
  readonly models: SqliteModelSlots

  constructor (readonly store: Store, imageIndex: TableIndex, textIndex: TableIndex, backupDir = path.join(store.dataDir, 'backups'), indexOpts: OpenVectorIndexOptions = {}) {
    this.images = new SqliteImages(store, imageIndex)
    this.texts = new SqliteTexts(store, textIndex)
    this.jobs = new SqliteJobs(store)
    const collections = { images: this.images, texts: this.texts }
    // getters: a model swap exchanges the index objects, and a backup must copy the active ones
    this.backups = new SqliteBackups({ store, get images () { return collections.images.index }, get texts () { return collections.texts.index } }, backupDir)
    this.models = new SqliteModelSlots(store, collections, indexOpts)
  }

  async getMeta (key: string): Promise<string | undefined> {
    return this.store.getMeta(key)
  }

  async setMeta (key: string, value: string): Promise<void> {
    this.store.setMeta(key, value)
  }

  indexInfo (): IndexInfo {
    const p = this.images.index.params
    return { kind: 'hnswlib', M: p.M, efConstruction: p.efConstruction, efSearch: p.efSearch, capacity: this.images.index.capacity }
  }

  async health (): Promise<BackendHealth> {
    return this.store.isOpen ? { ok: true } : { ok: false, reason: 'the SQLite store is closed' }
  }

  async close (): Promise<void> {
    await this.images.index.close()
    await this.texts.index.close()
    await this.images.standby?.close()
    await this.texts.standby?.close()
    this.store.close()
  }
}

/**
 * Opens (creating if needed) the SQLite store in `dataDir` and its two indexes. A store written
 * by another model is refused with ConflictError (409).
 */
export async function openSqliteBackend (opts: SqliteBackendOptions, identity: BackendIdentity): Promise<SqliteBackend> {
  const store = openStore(opts.dataDir, identity)
  const opened: TableIndex[] = []
  try {
    const indexOpts: OpenVectorIndexOptions = { ...opts.hnsw, ...(opts.checkpointEvery === undefined ? {} : { checkpointEvery: opts.checkpointEvery }), ...(opts.logger === undefined ? {} : { logger: opts.logger }) }
    const activeOpts = { ...indexOpts, modelId: store.modelId }
    opened.push(await openVectorIndex(store, 'images', indexFile(opts.dataDir, 'images', 'active'), activeOpts))
    opened.push(await openVectorIndex(store, 'texts', indexFile(opts.dataDir, 'texts', 'active'), activeOpts))
    const backend = new SqliteBackend(store, opened[0]!, opened[1]!, opts.backupDir, indexOpts)
    await backend.models.openStandbyIndexes()
    return backend
  } catch (err) {
    for (const t of opened) await t.close().catch(() => {})
    store.close()
    throw err
  }
}
