/**
 * The backup file's format: a plain tar whose first member, `manifest.json`, says what made it
 * (model id, dimension, schema), what it holds (counts, unfinished jobs) and the size and SHA-256
 * of every other member, so a restore can refuse another model's backup and a damaged file
 * before it writes anything.
 *
 * Members: `align-search.db` (SQLite's online backup), `images.hnsw`, `texts.hnsw` and their
 * `.json` sidecars (the graphs at the same moment: a restored server answers exactly as this one
 * did, without a rebuild), and `uploads/<jobId>/<file>` (the staged files of unfinished upload jobs).
 */
import { createReadStream } from 'node:fs'
import { extract } from 'tar-stream'

export const MANIFEST_NAME = 'manifest.json'
export const BACKUP_FORMAT = 'align-search-backup'
export const BACKUP_FORMAT_VERSION = 1
/** a manifest larger than this is not one of ours */
const MAX_MANIFEST_BYTES = 16 * 1024 * 1024

/** the members a backup may hold besides the manifest; anything else is refused on restore */
export const MEMBER_PATTERN = /^(align-search\.db|(images|texts)\.hnsw(\.json)?|uploads\/[A-Za-z0-9-]+\/[A-Za-z0-9._-]+)$/
/** a backup file's name in BACKUP_DIR: no folder, no leading dot, ends in .tar */
export const BACKUP_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.tar$/

export interface ManifestMember { name: string, bytes: number, sha256: string }
export interface ManifestJob { id: string, kind: string, status: string, done: number, failed: number, total: number }

export interface BackupManifest {
  format: typeof BACKUP_FORMAT
  version: typeof BACKUP_FORMAT_VERSION
  /** when the snapshot was taken */
  createdAt: string
  modelId: string
  dim: number
  distance: string
  /** the SQLite schema version of align-search.db */
  schemaVersion: number
  images: number
  texts: number
  /** the last row version (seq) each graph holds */
  seq: { images: number, texts: number }
  /** jobs queued or running at the snapshot: a restored server resumes them */
  unfinishedJobs: ManifestJob[]
  scheduled: boolean
  members: ManifestMember[]
}

/** The file is not an align-search backup, is damaged, or does not fit where it should go. */
export class BackupFileError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'BackupFileError'
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Checks a parsed manifest's shape; throws BackupFileError naming what is wrong. */
export function parseManifest (raw: unknown, file: string): BackupManifest {
  const notOurs = (why: string): never => { throw new BackupFileError(`${file} is not an align-search backup: ${why}`) }
  if (!isObj(raw) || raw.format !== BACKUP_FORMAT) return notOurs(`its ${MANIFEST_NAME} has no "format": "${BACKUP_FORMAT}"`)
  if (raw.version !== BACKUP_FORMAT_VERSION) {
    throw new BackupFileError(`${file} is an align-search backup of format version ${String(raw.version)}; this align-search reads version ${BACKUP_FORMAT_VERSION}`)
  }
  const members = raw.members
  if (typeof raw.modelId !== 'string' || typeof raw.dim !== 'number' || typeof raw.images !== 'number' || typeof raw.texts !== 'number' ||
    typeof raw.createdAt !== 'string' || !Array.isArray(members) || !Array.isArray(raw.unfinishedJobs) || !isObj(raw.seq)) {
    return notOurs(`its ${MANIFEST_NAME} lacks a field`)
  }
  for (const m of members) {
    if (!isObj(m) || typeof m.name !== 'string' || !MEMBER_PATTERN.test(m.name) || typeof m.bytes !== 'number' || typeof m.sha256 !== 'string') {
      return notOurs(`its ${MANIFEST_NAME} lists a bad member ${JSON.stringify(m)}`)
    }
  }
  if (!members.some((m) => (m as ManifestMember).name === 'align-search.db')) return notOurs('it holds no align-search.db')
  return { scheduled: false, ...raw } as unknown as BackupManifest
}

/** Reads a manifest from its bytes; throws BackupFileError when it is not ours. */
export function manifestFromBytes (bytes: Buffer, file: string): BackupManifest {
  let raw: unknown
  try { raw = JSON.parse(bytes.toString('utf8')) } catch { throw new BackupFileError(`${file} is not an align-search backup: ${MANIFEST_NAME} is not JSON`) }
  return parseManifest(raw, file)
}

/** Reads an entry's bytes, up to `max`; more is refused. */
export async function readEntry (entry: AsyncIterable<unknown>, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const chunk of entry) {
    const c = chunk as Buffer
    n += c.length
    if (n > max) throw new BackupFileError(`${what} is larger than ${max} bytes`)
    chunks.push(c)
  }
  return Buffer.concat(chunks)
}

/** Reads only the manifest (the first member) of backup `file`, without reading the rest. */
export async function readManifest (file: string): Promise<BackupManifest> {
  const input = createReadStream(file)
  const ex = extract()
  input.on('error', (err) => ex.destroy(err))
  input.pipe(ex)
  try {
    // only the first member is read: the manifest
    const first = await ex[Symbol.asyncIterator]().next()
    if (first.done === true) throw new BackupFileError(`${file} is not an align-search backup: it is empty`)
    const entry = first.value
    if (entry.header.name !== MANIFEST_NAME) throw new BackupFileError(`${file} is not an align-search backup: its first member is ${entry.header.name}, not ${MANIFEST_NAME}`)
    return manifestFromBytes(await readEntry(entry, MAX_MANIFEST_BYTES, MANIFEST_NAME), file)
  } catch (err) {
    if (err instanceof BackupFileError) throw err
    throw new BackupFileError(`${file} is not an align-search backup: ${(err as Error).message}`)
  } finally {
    input.destroy()
    ex.destroy()
  }
}

export { MAX_MANIFEST_BYTES }
