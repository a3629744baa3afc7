/** A full disk, from SQLite or the file system, as the API's 507. */
import { StorageFullError } from './errors.js'

/** true for "disk full" from SQLite (SQLITE_FULL) or the file system (ENOSPC, EDQUOT) */
export function isStorageFull (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT'
}

/** Rethrows a disk-full error as StorageFullError (507); anything else unchanged. */
export function mapStorageError (err: unknown): never {
  if (isStorageFull(err)) {
    throw new StorageFullError(`storage is full: ${(err as Error).message}. Free space under DATA_DIR and retry`)
  }
  throw err
}
