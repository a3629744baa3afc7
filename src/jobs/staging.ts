/** Upload jobs: files are staged under DATA_DIR/uploads/<jobId>/ and removed when the job finishes. */
import { mkdir, open, readdir, rm } from 'node:fs/promises'
import path from 'node:path'
import type { JobItem, JobStore } from '../backends/ports.js'
import { mapStorageError } from '../core/storage-error.js'
import { isTerminal, type Metadata } from '../core/types.js'
import { sanitizeFilename } from './sources.js'

export const UPLOADS_DIR = 'uploads'

/** A file of an upload job: its `bytes` whole, or as they arrive (read once, while staging). */
export interface UploadFile { bytes: Buffer | AsyncIterable<Buffer>, filename: string, id?: string, metadata?: Metadata }

/** An upload's files: a list, or a stream of files as a request brings them. */
export type UploadFiles = Iterable<UploadFile> | AsyncIterable<UploadFile>

/** the pieces of a file's bytes (a Buffer is itself iterable, but byte by byte) */
export function piecesOf (bytes: UploadFile['bytes']): Iterable<Buffer> | AsyncIterable<Buffer> {
  return Buffer.isBuffer(bytes) ? [bytes] : bytes
}

/** the staging folder of job `jobId` (job ids are generated UUIDs, never client input) */
export function stagingDir (dataDir: string, jobId: string): string {
  if (!/^[A-Za-z0-9-]+$/.test(jobId)) throw new Error(`invalid job id for staging: ${jobId}`)
  return path.join(path.resolve(dataDir), UPLOADS_DIR, jobId)
}

/**
 * Writes the files (fsynced) under DATA_DIR/uploads/<jobId>/ as `00000-<sanitized name>`, each as
 * its bytes arrive, and returns the folder and the job items; the original file name is kept for
 * error messages. On any throw (the disk is full: StorageFullError, 507; the files' source failed)
 * it removes what it wrote.
 */
export async function stageUploads (dataDir: string, jobId: string, files: UploadFiles): Promise<{ root: string, items: JobItem[] }> {
  const root = stagingDir(dataDir, jobId)
  try {
    await mkdir(root, { recursive: true })
    const items: JobItem[] = []
    for await (const f of files) {
      const item = uploadItem(f, items.length)
      items.push(item)
      const fh = await open(path.join(root, item.path), 'wx')
      try {
        for await (const piece of piecesOf(f.bytes)) await fh.write(piece)
        await fh.sync()
      } finally {
        await fh.close()
      }
    }
    return { root, items }
  } catch (err) {
    await rm(root, { recursive: true, force: true }).catch(() => {})
    return mapStorageError(err)
  }
}

/** The job item of uploaded file number `i`: it is staged as `00000-<sanitized name>`, and errors call it by its original name. */
export function uploadItem (f: UploadFile, i: number): JobItem {
  const name = `${String(i).padStart(5, '0')}-${sanitizeFilename(f.filename)}`
  const item: JobItem = { path: name, name: f.filename === '' ? name : f.filename }
  if (f.id !== undefined) item.id = f.id
  if (f.metadata !== undefined) item.metadata = f.metadata
  return item
}

/** Removes staging folders under `dataDir` whose job is finished or unknown (left by a crash). Returns how many. */
export async function removeStaleStaging (dataDir: string, jobs: JobStore): Promise<number> {
  const base = path.join(path.resolve(dataDir), UPLOADS_DIR)
  let names: string[]
  try { names = await readdir(base) } catch { return 0 }
  let removed = 0
  for (const name of names) {
    const job = await jobs.get(name)
    if (job === undefined || isTerminal(job.status)) {
      await rm(path.join(base, name), { recursive: true, force: true })
      removed++
    }
  }
  return removed
}
