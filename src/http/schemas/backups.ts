/** /v1/backups shapes. */
import { Type, type Static } from '@sinclair/typebox'

export const BackupInfo = Type.Object({
  name: Type.String({ description: 'the file name in BACKUP_DIR', examples: ['align-search-2024-05-01T10-00-00-000Z.tar'] }),
  bytes: Type.Integer({ description: 'size of the file, bytes' }),
  createdAt: Type.String({ format: 'date-time', description: 'the moment the backup holds: every image acknowledged before it is in it' }),
  images: Type.Integer(),
  texts: Type.Integer(),
  unfinishedJobs: Type.Array(Type.Object({
    id: Type.String(),
    status: Type.String(),
    done: Type.Integer(),
    failed: Type.Integer(),
    total: Type.Integer()
  }), { description: 'index jobs queued or running at that moment, with their progress then: a restored server resumes them from there' }),
  scheduled: Type.Boolean({ description: 'written by the schedule (BACKUP_EVERY), which keeps its newest BACKUP_KEEP' })
})
export type BackupInfoT = Static<typeof BackupInfo>

export const BackupList = Type.Object({
  backups: Type.Array(BackupInfo, { description: 'newest first' })
})

export const BackupParams = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 256, description: 'a backup\'s file name, as listed' })
})
