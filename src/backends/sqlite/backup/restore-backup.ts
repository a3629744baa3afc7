/**
 * Restores a backup file into a new DATA_DIR, or refuses with a message that says why: a folder
 * that is not empty, a file that is not a backup, another model's backup, a truncated or damaged
 * file. Nothing is half-written: the members are extracted and checked (size, SHA-256, the
 * database's own integrity check and counts) in a temp folder beside DATA_DIR, which is renamed
 * into place only when all of it holds.
 */
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, open, readdir, rename, rm, rmdir, stat } from 'node:fs/promises'
import path from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { extract } from 'tar-stream'
import { openStore } from '../store/index.js'
import { BackupFileError, MANIFEST_NAME, MAX_MANIFEST_BYTES, manifestFromBytes, readEntry, type BackupManifest } from './backup-manifest.js'

export interface RestoreResult {
  dataDir: string
  manifest: BackupManifest
}

/**
 * Restores backup `file` into `dataDir`, which must be missing or empty. With `identity`, a backup
 * made by another model (id or dimension) is refused.
 * @throws BackupFileError with the reason, after removing everything it wrote
 */
export async function restoreBackup (file: string, dataDir: string, identity?: { modelId: string, dim: number }): Promise<RestoreResult> {
  const target = path.resolve(dataDir)
  const st = await stat(file).catch(() => undefined)
  if (st === undefined || !st.isFile()) throw new BackupFileError(`${file} does not exist or is not a file`)
  const existing = await readdir(target).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return []
    if (err.code === 'ENOTDIR') throw new BackupFileError(`${target} is a file, not a folder`)
    throw err
  })
  if (existing.length > 0) {
    throw new BackupFileError(`${target} is not empty (${existing.length} entries, e.g. ${existing.slice(0, 3).join(', ')}): ` +
      'restore into a new or empty folder, so nothing there is overwritten (--data-dir <dir>, or DATA_DIR)')
  }
  await mkdir(path.dirname(target), { recursive: true })
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.restore-${process.pid}-${Date.now()}`)
  await mkdir(temp)
  try {
    const manifest = await extractChecked(file, temp, identity)
    await checkDatabase(temp, target, manifest, file)
    await fsyncDir(temp)
    // an empty target folder gives way to the checked copy; the rename is the one step that makes it appear
    if (existing.length === 0) await rmdir(target).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err })
    await rename(temp, target)
    await fsyncDir(path.dirname(target))
    return { dataDir: target, manifest }
  } catch (err) {
    await rm(temp, { recursive: true, force: true })
    throw err
  }
}

/** Extracts every member into `dir`, checking each against the manifest; resolves with the manifest. */
async function extractChecked (file: string, dir: string, identity: { modelId: string, dim: number } | undefined): Promise<BackupManifest> {
  const input = createReadStream(file, { highWaterMark: 1 << 20 })
  const ex = extract()
  input.on('error', (err) => ex.destroy(err))
  input.pipe(ex)
  const failed = new Promise<never>((_resolve, reject) => { ex.once('error', reject) })
  failed.catch(() => {}) // raced per member below; the loop sees the same error
  let manifest: BackupManifest | undefined
  const seen = new Set<string>()
  try {
    for await (const entry of ex) {
      const name = entry.header.name
      if (manifest === undefined) {
        if (name !== MANIFEST_NAME) throw new BackupFileError(`${file} is not an align-search backup: its first member is ${name}, not ${MANIFEST_NAME}`)
        manifest = manifestFromBytes(await readEntry(entry, MAX_MANIFEST_BYTES, MANIFEST_NAME), file)
        checkIdentity(manifest, identity, file)
        continue
      }
      const member = manifest.members.find((m) => m.name === name)
      if (member === undefined || seen.has(name) || entry.header.type !== 'file') {
        throw new BackupFileError(`${file} is damaged: it holds a member its manifest does not list (${name})`)
      }
      seen.add(name)
      const out = path.join(dir, ...name.split('/'))
      await mkdir(path.dirname(out), { recursive: true })
      const hash = createHash('sha256')
      let bytes = 0
      const copy = pipeline(entry, new Transform({
        transform (chunk: Buffer, _enc, cb) { hash.update(chunk); bytes += chunk.length; cb(null, chunk) }
      }), createWriteStream(out, { flags: 'wx' }))
      // a file that ends inside this member fails the extractor, not the member's stream: race the two
      await Promise.race([copy, failed]).catch((err: unknown) => { entry.destroy(err as Error); throw err })
      if (bytes !== member.bytes || hash.digest('hex') !== member.sha256) {
        throw new BackupFileError(`${file} is damaged: ${name} does not match the size and SHA-256 its manifest records`)
      }
      const fh = await open(out, 'r+')
      try { await fh.sync() } finally { await fh.close() }
    }
  } catch (err) {
    if (err instanceof BackupFileError) throw err
    const why = (err as Error).message
    if (manifest === undefined) throw new BackupFileError(`${file} is not an align-search backup (${why})`)
    if (/unexpected end/i.test(why)) throw new BackupFileError(`${file} is truncated: it ends inside a member (${why}); nothing was restored`)
    throw new BackupFileError(`${file} is damaged (${why}); nothing was restored`)
  } finally {
    input.destroy()
  }
  if (manifest === undefined) throw new BackupFileError(`${file} is not an align-search backup: it is empty`)
  const missing = manifest.members.filter((m) => !seen.has(m.name)).map((m) => m.name)
  if (missing.length > 0) throw new BackupFileError(`${file} is truncated: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing; nothing was restored`)
  return manifest
}

function checkIdentity (manifest: BackupManifest, identity: { modelId: string, dim: number } | undefined, file: string): void {
  if (identity === undefined) return
  if (manifest.modelId !== identity.modelId || manifest.dim !== identity.dim) {
    throw new BackupFileError(`${file} is a backup of model ${manifest.modelId} (dim ${manifest.dim}); MODEL_DIR holds ${identity.modelId} (dim ${identity.dim}). ` +
      'Embeddings of different models cannot be compared: restore with MODEL_DIR set to the model the backup was made with')
  }
}

/**
 * Opens the extracted database: SQLite's quick_check, the counts of the manifest, and the staging
 * folders of upload jobs moved to where this DATA_DIR keeps them.
 */
async function checkDatabase (dir: string, target: string, manifest: BackupManifest, file: string): Promise<void> {
  let store
  try {
    store = openStore(dir, { modelId: manifest.modelId, dim: manifest.dim })
  } catch (err) {
    throw new BackupFileError(`${file} is damaged: its database does not open here (${(err as Error).message})`)
  }
  try {
    const check = store.db.pragma('quick_check', { simple: true })
    if (check !== 'ok') throw new BackupFileError(`${file} is damaged: SQLite's quick_check says ${String(check)}`)
    const images = store.images.count()
    const texts = store.texts.count()
    if (images !== manifest.images || texts !== manifest.texts) {
      throw new BackupFileError(`${file} is damaged: its database holds ${images} images and ${texts} texts, its manifest says ${manifest.images} and ${manifest.texts}`)
    }
    // upload jobs read their staged files from DATA_DIR/uploads/<id>: point them at the new DATA_DIR
    const rows = store.db.prepare("SELECT id FROM jobs WHERE kind = 'upload'").all() as Array<{ id: string }>
    const setRoot = store.db.prepare<[string, string]>('UPDATE jobs SET root = ? WHERE id = ?')
    store.transaction(() => { for (const r of rows) setRoot.run(path.join(target, 'uploads', r.id), r.id) })
  } finally {
    store.close()
  }
}

async function fsyncDir (dir: string): Promise<void> {
  let fh
  try { fh = await open(dir, 'r') } catch { return }
  try { await fh.sync() } catch { /* some file systems refuse fsync on a folder */ } finally { await fh.close() }
}
