/** Small file helpers for crash-safe snapshots: temp file → fsync → rename → fsync the folder. */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, readFile, rename, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import type { SnapshotInfo } from './vector-index.js'

/** the sidecar next to an index file */
export function sidecarPath (indexPath: string): string {
  return `${indexPath}.json`
}

let tmpCounter = 0
/** a temp name in the same folder (so rename is atomic) */
export function tempPath (file: string): string {
  return `${file}.tmp-${process.pid}-${++tmpCounter}`
}

export async function fsyncFile (file: string): Promise<void> {
  const fh = await open(file, 'r+')
  try { await fh.sync() } finally { await fh.close() }
}

/** fsync a folder so a rename inside it is durable (a no-op where folders cannot be opened) */
export async function fsyncDir (dir: string): Promise<void> {
  let fh
  try { fh = await open(dir, 'r') } catch { return }
  try { await fh.sync() } catch { /* some file systems refuse fsync on a folder */ } finally { await fh.close() }
}

/** size and SHA-256 of a file, streamed so a large index does not block the event loop */
export async function hashFile (file: string): Promise<{ bytes: number, sha256: string }> {
  const hash = createHash('sha256')
  let bytes = 0
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    const b = chunk as Buffer
    bytes += b.length
    hash.update(b)
  }
  return { bytes, sha256: hash.digest('hex') }
}

/** Replaces `file` with `data` atomically and durably. */
export async function writeFileAtomic (file: string, data: string | Buffer): Promise<void> {
  const tmp = tempPath(file)
  const fh = await open(tmp, 'w')
  try {
    await fh.writeFile(data)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, file)
  await fsyncDir(path.dirname(file))
}

/** Reads and sanity-checks a sidecar; throws when it is missing or malformed. */
export async function readSidecar (indexPath: string): Promise<SnapshotInfo> {
  const raw = JSON.parse(await readFile(sidecarPath(indexPath), 'utf8')) as Partial<SnapshotInfo>
  if (raw.format !== 1 || typeof raw.dim !== 'number' || typeof raw.bytes !== 'number' || typeof raw.sha256 !== 'string' ||
    typeof raw.count !== 'number' || !Array.isArray(raw.deleted) || typeof raw.M !== 'number' || typeof raw.efConstruction !== 'number') {
    throw new Error('snapshot sidecar is malformed')
  }
  return { meta: {}, ...raw } as SnapshotInfo
}

/** true when the file exists */
export async function exists (file: string): Promise<boolean> {
  try { await stat(file); return true } catch { return false }
}

/** Removes a snapshot and its sidecar (best effort). */
export async function removeSnapshot (indexPath: string): Promise<void> {
  await rm(indexPath, { force: true })
  await rm(sidecarPath(indexPath), { force: true })
}
