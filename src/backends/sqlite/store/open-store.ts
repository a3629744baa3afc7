/**
 * The SQLite store: the source of truth for images, texts, their embeddings and the jobs.
 * WAL mode with synchronous=FULL: a write that was acknowledged survives a process crash
 * and a power loss (NORMAL would only survive the former).
 */
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import { ConflictError } from '../../../core/errors.js'
import { ImageRows } from './image-rows.js'
import { JobRows } from './job-rows.js'
import { migrate, SCHEMA_VERSION } from './schema.js'
import { mapStorageError } from '../../../core/storage-error.js'
import { TextRows } from './text-rows.js'
import type { VectorRows, VectorTableName } from './vector-rows.js'
import type { BackendIdentity } from '../../ports.js'

/** File name of the database inside DATA_DIR. */
export const DB_FILE = 'align-search.db'

/** the model a store was written by: the backend's identity (src/backends/ports.ts) */
export type StoreIdentity = BackendIdentity

export class Store {
  readonly images: ImageRows
  readonly texts: TextRows
  readonly jobs: JobRows
  /** the distance the vectors are compared with */
  readonly distance = 'cosine'
  private closed = false

  constructor (readonly db: Database.Database, readonly dataDir: string, readonly modelId: string, readonly dim: number) {
    this.images = new ImageRows(db, dim)
    this.texts = new TextRows(db, dim)
    this.jobs = new JobRows(db)
  }

  /** absolute path of the database file */
  get file (): string { return path.join(this.dataDir, DB_FILE) }

  /** the rows of one vector table */
  table (name: VectorTableName): VectorRows {
    return name === 'images' ? this.images : this.texts
  }

  /** Runs `fn` in one IMMEDIATE transaction (all or nothing); a full disk becomes StorageFullError (507). */
  transaction<T> (fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate()
    } catch (err) {
      return mapStorageError(err)
    }
  }

  getMeta (key: string): string | undefined {
    return (this.db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?').get(key))?.value
  }

  setMeta (key: string, value: string): void {
    this.db.prepare<[string, string]>('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value)
  }

  get isOpen (): boolean { return !this.closed }

  close (): void {
    if (this.closed) return
    this.closed = true
    try { this.db.pragma('wal_checkpoint(TRUNCATE)') } catch { /* best effort: WAL replays on next open anyway */ }
    this.db.close()
  }
}

/**
 * Opens (creating if needed) `dataDir/align-search.db`. The first open records the model id,
 * dimension and distance; a later open by a different model is refused with ConflictError (409)
 * that says how to re-index, because vectors of two models cannot be compared.
 */
export function openStore (dataDir: string, identity: StoreIdentity): Store {
  if (!Number.isInteger(identity.dim) || identity.dim <= 0) throw new RangeError(`dim must be a positive integer, got ${identity.dim}`)
  let db: Database.Database | undefined
  try {
    mkdirSync(dataDir, { recursive: true })
    db = new Database(path.join(dataDir, DB_FILE))
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
    db.pragma('foreign_keys = ON')
    db.pragma('busy_timeout = 5000')
    const version = migrate(db)
    if (version > SCHEMA_VERSION) {
      throw new ConflictError(`${dataDir} was written by a newer align-search (schema ${version}, this one reads ${SCHEMA_VERSION}). Upgrade the server or start with an empty DATA_DIR`)
    }
    checkIdentity(db, dataDir, identity)
    return new Store(db, dataDir, identity.modelId, identity.dim)
  } catch (err) {
    db?.close()
    return mapStorageError(err)
  }
}

function checkIdentity (db: Database.Database, dataDir: string, { modelId, dim }: StoreIdentity): void {
  const get = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?')
  const storedModel = get.get('model_id')?.value
  const storedDim = get.get('dim')?.value
  if (storedModel === undefined || storedDim === undefined) {
    const set = db.prepare<[string, string]>('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)')
    db.transaction(() => {
      set.run('model_id', modelId)
      set.run('dim', String(dim))
      set.run('distance', 'cosine')
    })()
    return
  }
  if (storedModel !== modelId || Number(storedDim) !== dim) {
    throw new ConflictError(
      `${dataDir} was built with model ${storedModel} (dim ${storedDim}); this server runs ${modelId} (dim ${dim}). ` +
      'Embeddings of different models cannot be compared. Start with an empty DATA_DIR, or move the old one away and re-index: npm run index -- <dir>')
  }
}
