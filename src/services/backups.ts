/**
 * Backups as a use case: the backend's `backups` capability (the embedded one) behind one
 * service, a clear 501 where the backend has its own tools (PostgreSQL: pg_dump), and the optional
 * schedule (BACKUP_EVERY, timed from the end of the previous run) that keeps the newest BACKUP_KEEP
 * of its own backups.
 */
import type { Backend, BackupInfo, BackupStore } from '../backends/ports.js'
import { NotImplementedError } from '../core/errors.js'
import type { Logger } from '../core/types.js'

export type { BackupInfo }

export interface BackupService {
  create (): Promise<BackupInfo>
  list (): Promise<BackupInfo[]>
  /** the file to send and its facts; undefined when there is no backup by that name */
  get (name: string): Promise<{ file: string, info: BackupInfo } | undefined>
  remove (name: string): Promise<boolean>
  /** stops the schedule; a backup being written finishes first */
  close (): Promise<void>
}

export interface BackupSchedule {
  /** a backup every this many ms; undefined or 0 = no schedule (the default) */
  everyMs?: number | undefined
  /** scheduled backups kept (older scheduled ones are removed; backups made on request are never) */
  keep: number
}

const PG_MESSAGE = 'the PostgreSQL backend is backed up with PostgreSQL\'s own tools: pg_dump -Fc the database (it holds the images, texts, jobs and the queue schema align_queue) and pg_restore it into an empty one; see "Backup and restore" in the README'

/** The backup use case over `backend`; with `schedule.everyMs`, a backup is written every so often. */
export function openBackupService (backend: Backend, logger: Logger, schedule: BackupSchedule = { keep: 7 }): BackupService {
  const store: BackupStore | undefined = backend.backups
  const need = (): BackupStore => {
    if (store === undefined) throw new NotImplementedError(PG_MESSAGE)
    return store
  }
  let timer: NodeJS.Timeout | undefined
  let running: Promise<unknown> = Promise.resolve()
  let stopped = false

  const scheduled = async (): Promise<void> => {
    if (store === undefined) return
    try {
      const info = await store.create({ scheduled: true })
      logger.info({ backup: info.name, bytes: info.bytes, images: info.images }, 'scheduled backup written')
      const old = (await store.list()).filter((b) => b.scheduled).slice(schedule.keep)
      for (const b of old) await store.remove(b.name)
      if (old.length > 0) logger.info({ removed: old.map((b) => b.name), keep: schedule.keep }, 'older scheduled backups removed')
    } catch (err) {
      logger.error({ err }, 'scheduled backup failed; the next one is tried on schedule')
    }
  }
  if (schedule.everyMs !== undefined && schedule.everyMs > 0) {
    if (store === undefined) {
      logger.warn({ backend: backend.name }, `BACKUP_EVERY is ignored: ${PG_MESSAGE}`)
    } else {
      // the next run is timed from the end of the last, so two never overlap however long one takes
      const every = schedule.everyMs
      const next = (): void => {
        timer = setTimeout(() => {
          running = scheduled().finally(() => { if (!stopped) next() })
        }, every)
        timer.unref()
      }
      next()
    }
  }

  return {
    async create () { return await need().create() },
    async list () { return await need().list() },
    async get (name) { return await need().get(name) },
    async remove (name) { return await need().remove(name) },
    async close () {
      stopped = true
      if (timer !== undefined) clearTimeout(timer)
      await running
    }
  }
}
