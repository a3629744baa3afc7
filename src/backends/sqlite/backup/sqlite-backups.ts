/**
 * The embedded backend's `backups` capability: backup files in BACKUP_DIR (default
 * DATA_DIR/backups), written one at a time by writeBackup, listed from their manifests.
 */
import { mkdir, readdir, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import { ConflictError } from '../../../core/errors.js'
import type { BackupInfo, BackupStore } from '../../ports.js'
import { BACKUP_NAME_PATTERN, BackupFileError, readManifest, type BackupManifest } from './backup-manifest.js'
import { WORK_PREFIX, writeBackup, type BackupSource } from './write-backup.js'

/** A backup's file name: its UTC time, sortable, e.g. align-search-2024-05-01T10-00-00-000Z.tar. */
export function backupName (at: Date, scheduled: boolean): string {
  return `align-search-${at.toISOString().replace(/[:.]/g, '-')}${scheduled ? '-scheduled' : ''}.tar`
}

function toInfo (name: string, bytes: number, m: BackupManifest): BackupInfo {
  return {
    name,
    bytes,
    createdAt: m.createdAt,
    images: m.images,
    texts: m.texts,
    unfinishedJobs: m.unfinishedJobs.map((j) => ({ id: j.id, status: j.status, done: j.done, failed: j.failed, total: j.total })),
    scheduled: m.scheduled
  }
}

export class SqliteBackups implements BackupStore {
  private running: Promise<BackupInfo> | undefined
  private cleaned = false

  constructor (private readonly src: BackupSource, readonly dir: string) {}

  async create (opts: { scheduled?: boolean } = {}): Promise<BackupInfo> {
    if (this.running !== undefined) throw new ConflictError('a backup is being written already; retry when it is done (GET /v1/backups lists it then)')
    this.running = (async () => {
      await this.removeLeftovers()
      await mkdir(this.dir, { recursive: true })
      let name = backupName(new Date(), opts.scheduled === true)
      // two backups in one millisecond: the second waits for a name of its own
      while (await stat(path.join(this.dir, name)).then(() => true, () => false)) {
        await new Promise((resolve) => setTimeout(resolve, 2))
        name = backupName(new Date(), opts.scheduled === true)
      }
      const file = path.join(this.dir, name)
      const manifest = await writeBackup(this.src, file, opts)
      return toInfo(name, (await stat(file)).size, manifest)
    })()
    try {
      return await this.running
    } finally {
      this.running = undefined
    }
  }

  async list (): Promise<BackupInfo[]> {
    let names: string[]
    try { names = await readdir(this.dir) } catch { return [] }
    const out: BackupInfo[] = []
    for (const name of names.filter((n) => BACKUP_NAME_PATTERN.test(n))) {
      const found = await this.get(name).catch(() => undefined)
      if (found !== undefined) out.push(found.info)
    }
    return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.name.localeCompare(a.name))
  }

  async get (name: string): Promise<{ file: string, info: BackupInfo } | undefined> {
    if (!BACKUP_NAME_PATTERN.test(name)) return undefined
    const file = path.join(this.dir, name)
    const st = await stat(file).catch(() => undefined)
    if (st === undefined || !st.isFile()) return undefined
    try {
      return { file, info: toInfo(name, st.size, await readManifest(file)) }
    } catch (err) {
      if (err instanceof BackupFileError) return undefined // not one of ours: not listed, not served
      throw err
    }
  }

  async remove (name: string): Promise<boolean> {
    const found = await this.get(name)
    if (found === undefined) return false
    await rm(found.file, { force: true })
    return true
  }

  /** work folders and partial files left by a backup that a crash interrupted (one process per DATA_DIR: none is in progress) */
  private async removeLeftovers (): Promise<void> {
    if (this.cleaned) return
    this.cleaned = true
    const dataDir = this.src.store.dataDir
    for (const n of await readdir(dataDir).catch(() => [] as string[])) {
      if (n.startsWith(WORK_PREFIX)) await rm(path.join(dataDir, n), { recursive: true, force: true })
    }
    for (const n of await readdir(this.dir).catch(() => [] as string[])) {
      if (n.endsWith('.tar.partial')) await rm(path.join(this.dir, n), { force: true })
    }
  }
}
