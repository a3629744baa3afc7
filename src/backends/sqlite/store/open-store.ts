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
import type { BackendIdentity, StandbyRecord } from '../../ports.js'
import { StandbyRows } from './standby-rows.js'
import { dropStandby, readStandby, swapSlots, writeStandby } from './model-slots.js'

/** File name of the database inside DATA_DIR. */
export const DB_FILE = 'align-search.db'

/** the model a store was written by: the backend's identity (src/backends/ports.ts) */
export type StoreIdentity = BackendIdentity

export class Store {
  /** the active model's rows; replaced when a swap changes the active model (and maybe the dimension) */
  images: ImageRows
  texts: TextRows
  readonly jobs: JobRows
  /** the distance the vectors are compared with */
  readonly distance = 'cosine'
  private closed = false
  private standbyRec: StandbyRecord | undefined
  private standbyTables: { images: StandbyRows, texts: StandbyRows } | undefined

  constructor (readonly db: Database.Database, readonly dataDir: string, public modelId: string, public dim: number, public modelDir?: string) {
    this.images = new ImageRows(db, dim)
    this.texts = new TextRows(db, dim)
    this.jobs = new JobRows(db)
    this.setStandby(readStandby(db))
  }

  /** the model slot beside the active one */
  get standby (): StandbyRecord | undefined { return this.standbyRec }

  /** the standby model's vectors of one table (undefined without a standby model) */
  standbyRows (name: VectorTableName): StandbyRows | undefined {
    return this.standbyTables?.[name]
  }

  /** Records the standby slot (in the caller's transaction) and the rows that go with it. */
  saveStandby (rec: StandbyRecord): void {
    writeStandby(this.db, rec)
    this.setStandby(rec)
  }

  /** Drops the standby slot and its vectors (one transaction). */
  dropStandby (): void {
    this.transaction(() => { dropStandby(this.db) })
    this.setStandby(undefined)
  }

  /** Exchanges the active and the standby model (one transaction); returns the new standby record. */
  swapModels (): StandbyRecord {
    const next = this.standbyRec
    if (next === undefined) throw new ConflictError('there is no standby model to swap to')
    const previous = this.transaction(() => swapSlots(this.db, { modelId: this.modelId, dim: this.dim, ...(this.modelDir === undefined ? {} : { modelDir: this.modelDir }) }, next))
    this.modelId = next.modelId
    this.dim = next.dim
    this.modelDir = next.modelDir
    this.images = new ImageRows(this.db, next.dim)
    this.texts = new TextRows(this.db, next.dim)
    this.setStandby(previous)
    return previous
  }

  private setStandby (rec: StandbyRecord | undefined): void {
    const same = rec !== undefined && this.standbyRec !== undefined && this.standbyRec.dim === rec.dim && this.standbyTables !== undefined
    this.standbyRec = rec
    if (rec === undefined) this.standbyTables = undefined
    else if (!same) this.standbyTables = { images: new StandbyRows(this.db, 'images', rec.dim), texts: new StandbyRows(this.db, 'texts', rec.dim) }
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
    if (identity.modelDir !== undefined) db.prepare("INSERT INTO meta (key, value) VALUES ('model_dir', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(identity.modelDir)
    return new Store(db, dataDir, identity.modelId, identity.dim, identity.modelDir)
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
    const standby = readStandby(db)
    const storedDir = get.get('model_dir')?.value
    if (standby !== undefined && standby.modelId === modelId) {
      // the other model of a switch: say which is which rather than "re-index", and tell the caller
      // which folder serves this data (the server follows it, see src/main/wiring/open-services.ts)
      const err = new ConflictError(
        `${dataDir} serves model ${storedModel} (dim ${storedDim}${storedDir === undefined ? '' : `, MODEL_DIR ${storedDir}`}); ` +
        `${modelId} is its standby model (${standby.state === 'building' ? 'a switch to it is under way' : 'the previous model, kept for a swap back'}). ` +
        `Start with MODEL_DIR=${storedDir ?? '<the folder of ' + storedModel + '>'}; ${standby.state === 'building' ? 'the switch resumes and swaps when complete' : 'swap back with POST /v1/models/swap'}. See README "Changing the model"`)
      if (storedDir !== undefined) (err as { activeModelDir?: string }).activeModelDir = storedDir
      throw err
    }
    throw new ConflictError(
      `${dataDir} was built with model ${storedModel} (dim ${storedDim}); this server runs ${modelId} (dim ${dim}). ` +
      `Embeddings of different models cannot be compared. Start with MODEL_DIR=${storedDir ?? '<the folder of ' + storedModel + '>'} and switch models without downtime ` +
      '(POST /v1/models/switch, npm run model:switch), or re-index into an empty DATA_DIR: npm run index -- <dir>. See README "Changing the model"')
  }
}
