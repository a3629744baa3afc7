/**
 * Writes one backup file of a live embedded backend without stopping it.
 *
 * Consistency: a second, read-only SQLite connection opens a read transaction (WAL keeps its
 * snapshot while the server goes on writing), and in the same tick both graphs queue a snapshot
 * behind the inserts already queued. Every write commits and queues its index insert in one tick,
 * so the graphs hold exactly the rows that snapshot sees: everything acknowledged before the backup
 * began, and no part of a batch (a batch's rows and its job progress are one transaction).
 * The staged files of unfinished upload jobs are hard-linked in that tick too, before their job
 * can finish and remove them. SQLite's online backup API then copies the pinned snapshot page by
 * page, a step per event-loop turn, so searches and indexing keep going.
 */
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream, linkSync, mkdirSync, readdirSync } from 'node:fs'
import { mkdtemp, open, readdir, rename, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import Database from 'better-sqlite3'
import { pack } from 'tar-stream'
import type { TableIndex } from '../hnsw/index.js'
import type { Store } from '../store/index.js'
import { BACKUP_FORMAT, BACKUP_FORMAT_VERSION, MANIFEST_NAME, type BackupManifest, type ManifestJob, type ManifestMember } from './backup-manifest.js'

/** What a backup reads: the store and the two graphs of one open backend. */
export interface BackupSource {
  store: Store
  images: TableIndex
  texts: TableIndex
}

/** the prefix of a backup's work folder inside DATA_DIR (removed when done; one left by a crash is removed at the next backup) */
export const WORK_PREFIX = '.backup-'

interface Pinned { images: number, texts: number, schemaVersion: number, jobs: ManifestJob[], uploads: string[] }

/**
 * Writes a backup of `src` to `destFile` (through `destFile.partial`, renamed when complete and
 * fsynced). Resolves with its manifest.
 */
export async function writeBackup (src: BackupSource, destFile: string, opts: { scheduled?: boolean } = {}): Promise<BackupManifest> {
  const dataDir = src.store.dataDir
  const work = await mkdtemp(path.join(dataDir, WORK_PREFIX))
  const partial = `${destFile}.partial`
  try {
    const conn = new Database(src.store.file, { readonly: true, fileMustExist: true })
    let pinned: Pinned
    let graphs: Promise<unknown>
    let copied: Promise<unknown>
    const createdAt = new Date().toISOString()
    try {
      conn.pragma('busy_timeout = 5000')
      // --- one tick: the snapshot, the graphs' place in the insert queue and the staged uploads ---
      conn.prepare('BEGIN').run()
      pinned = readPinned(conn)
      graphs = Promise.all([
        src.images.snapshotTo(path.join(work, 'images.hnsw')),
        src.texts.snapshotTo(path.join(work, 'texts.hnsw'))
      ])
      graphs.catch(() => {}) // awaited below; this only keeps a failure from counting as unhandled meanwhile
      linkUploads(dataDir, work, pinned.uploads)
      // --- then copy the pinned snapshot, 256 pages (1 MiB) per event-loop turn ---
      copied = conn.backup(path.join(work, 'align-search.db'), { progress: () => 256 })
      await copied
    } finally {
      // the graphs' snapshots must settle before the work folder can go, whatever failed
      await Promise.allSettled([graphs!, copied!])
      if (conn.inTransaction) conn.prepare('COMMIT').run()
      conn.close()
    }
    const [imagesInfo, textsInfo] = await graphs as [{ meta: Record<string, unknown> }, { meta: Record<string, unknown> }]
    const members = await hashMembers(work)
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      version: BACKUP_FORMAT_VERSION,
      createdAt,
      modelId: src.store.modelId,
      dim: src.store.dim,
      distance: src.store.distance,
      schemaVersion: pinned.schemaVersion,
      images: pinned.images,
      texts: pinned.texts,
      seq: { images: Number(imagesInfo.meta.seq), texts: Number(textsInfo.meta.seq) },
      unfinishedJobs: pinned.jobs,
      scheduled: opts.scheduled === true,
      members
    }
    await writeTar(work, manifest, partial)
    await rename(partial, destFile)
    await fsyncDir(path.dirname(destFile))
    return manifest
  } catch (err) {
    await rm(partial, { force: true })
    throw err
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/** What the pinned snapshot holds (its first read starts the read transaction). */
function readPinned (conn: Database.Database): Pinned {
  const n = (sql: string): number => (conn.prepare(sql).get() as { n: number }).n
  const images = n('SELECT COUNT(*) AS n FROM images')
  const texts = n('SELECT COUNT(*) AS n FROM texts')
  const schemaVersion = Number((conn.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string } | undefined)?.value ?? 0)
  const jobs = conn.prepare("SELECT id, kind, status, done, failed, total FROM jobs WHERE status IN ('queued', 'running') ORDER BY created_at, rowid").all() as ManifestJob[]
  return { images, texts, schemaVersion, jobs, uploads: jobs.filter((j) => j.kind === 'upload').map((j) => j.id) }
}

/** Hard-links the staged files of `jobIds` (DATA_DIR/uploads/<id>/) into the work folder; synchronous, on purpose. */
function linkUploads (dataDir: string, work: string, jobIds: string[]): void {
  for (const id of jobIds) {
    if (!/^[A-Za-z0-9-]+$/.test(id)) continue
    const from = path.join(dataDir, 'uploads', id)
    let names: string[]
    try { names = readdirSync(from) } catch { continue } // finished meanwhile, or never staged
    const to = path.join(work, 'uploads', id)
    mkdirSync(to, { recursive: true })
    for (const name of names) linkSync(path.join(from, name), path.join(to, name))
  }
}

/** Every file under the work folder, in a stable order, with its size and SHA-256. */
async function hashMembers (work: string): Promise<ManifestMember[]> {
  const names: string[] = []
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(path.join(work, rel), { withFileTypes: true })) {
      const name = rel === '' ? entry.name : `${rel}/${entry.name}`
      if (entry.isDirectory()) await walk(name)
      else if (entry.isFile()) names.push(name)
    }
  }
  await walk('')
  // the database first: a restore checks it before the graphs and the uploads
  names.sort((a, b) => (a === 'align-search.db' ? -1 : b === 'align-search.db' ? 1 : a.localeCompare(b)))
  const out: ManifestMember[] = []
  for (const name of names) {
    const hash = createHash('sha256')
    let bytes = 0
    for await (const chunk of createReadStream(path.join(work, name), { highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer)
      bytes += (chunk as Buffer).length
    }
    out.push({ name, bytes, sha256: hash.digest('hex') })
  }
  return out
}

/** Streams the manifest and the members into `file` as a tar, and fsyncs it. */
async function writeTar (work: string, manifest: BackupManifest, file: string): Promise<void> {
  const tar = pack()
  const written = pipeline(tar, createWriteStream(file))
  const mtime = new Date(manifest.createdAt)
  try {
    const body = Buffer.from(JSON.stringify(manifest, null, 2))
    await new Promise<void>((resolve, reject) => { tar.entry({ name: MANIFEST_NAME, size: body.length, mtime }, body, (err) => { err == null ? resolve() : reject(err) }) })
    for (const m of manifest.members) {
      const entry = tar.entry({ name: m.name, size: m.bytes, mtime })
      await pipeline(createReadStream(path.join(work, m.name)), entry)
    }
    tar.finalize()
  } catch (err) {
    tar.destroy(err as Error)
  }
  await written
  const fh = await open(file, 'r+')
  try { await fh.sync() } finally { await fh.close() }
  if ((await stat(file)).size === 0) throw new Error(`the backup ${file} came out empty`)
}

async function fsyncDir (dir: string): Promise<void> {
  let fh
  try { fh = await open(dir, 'r') } catch { return }
  try { await fh.sync() } catch { /* some file systems refuse fsync on a folder */ } finally { await fh.close() }
}
