export { SqliteBackups, backupName } from './sqlite-backups.js'
export { writeBackup, type BackupSource } from './write-backup.js'
export { restoreBackup, type RestoreResult } from './restore-backup.js'
export { readManifest, BackupFileError, BACKUP_NAME_PATTERN, type BackupManifest } from './backup-manifest.js'
