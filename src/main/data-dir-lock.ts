/**
 * One process at a time per DATA_DIR: the server and `npm run index` both take this lock before
 * they open the store, so the CLI cannot write an index a running server would never see, and two
 * servers cannot share one.
 *
 * The lock is SQLite's own write lock on DATA_DIR/align-search.lock, held by an open transaction.
 * The kernel drops it when the process ends, however it ends (SIGKILL, a crash, a power cut), so a
 * dead holder never leaves a stale lock behind and a recycled pid cannot fake a live one. The file
 * also records who holds it, for the message the next process shows.
 */
import { hostname } from 'node:os'
import path from 'node:path'
import Database from 'better-sqlite3'

export const LOCK_FILE = 'align-search.lock'

/** Who holds a DATA_DIR. */
export interface LockHolder {
  /** what the holder is, e.g. "the server" or "npm run index" */
  role: string
  pid: number
  host: string
  /** ISO time the lock was taken */
  since: string
}

/** Another live process holds the DATA_DIR. */
export class DataDirBusyError extends Error {
  constructor (readonly dataDir: string, readonly holder: LockHolder | undefined) {
    const who = holder === undefined
      ? 'another align-search process'
      : `${holder.role} (pid ${holder.pid}${holder.host === hostname() ? '' : ` on ${holder.host}`}, since ${holder.since})`
    super(`DATA_DIR ${dataDir} is in use by ${who}: one align-search process at a time may use a DATA_DIR`)
    this.name = 'DataDirBusyError'
  }
}

export interface DataDirLock {
  /** releases the lock (also released when the process exits) */
  release: () => void
}

const isBusy = (err: unknown): boolean => {
  const code = (err as { code?: unknown } | null)?.code
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED'
}

/**
 * Takes the lock on `dataDir` (which must exist) for this process, as `role`.
 * @throws DataDirBusyError while another live process holds it
 */
export function lockDataDir (dataDir: string, role: string): DataDirLock {
  const file = path.join(dataDir, LOCK_FILE)
  // timeout 0: a held lock answers at once instead of waiting for it
  const db = new Database(file, { timeout: 0 })
  try {
    db.exec('CREATE TABLE IF NOT EXISTS holder (one INTEGER PRIMARY KEY CHECK (one = 1), role TEXT, pid INTEGER, host TEXT, since TEXT)')
    db.prepare('INSERT OR REPLACE INTO holder VALUES (1, ?, ?, ?, ?)').run(role, process.pid, hostname(), new Date().toISOString())
    // the write lock, kept until release: readers (the next process's message) still get in
    db.exec('BEGIN IMMEDIATE')
  } catch (err) {
    const holder = isBusy(err) ? readHolder(db) : undefined
    db.close()
    if (!isBusy(err)) throw err
    throw new DataDirBusyError(dataDir, holder)
  }
  let released = false
  return {
    release () {
      if (released) return
      released = true
      db.exec('ROLLBACK')
      db.close()
    }
  }
}

function readHolder (db: Database.Database): LockHolder | undefined {
  try {
    return db.prepare('SELECT role, pid, host, since FROM holder WHERE one = 1').get() as LockHolder | undefined
  } catch {
    return undefined
  }
}
