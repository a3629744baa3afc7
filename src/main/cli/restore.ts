/**
 * `npm run restore -- <file> [--data-dir <dir>]`: restores a backup into an empty DATA_DIR
 * (default: the DATA_DIR setting). Refuses, writing nothing, a folder that is not empty, a file
 * that is not a backup, a backup of another model than MODEL_DIR's, and a truncated or damaged file.
 */
import path from 'node:path'
import { ConfigError, loadConfig, type Config } from '../config/config.js'
import { BackupFileError, restoreBackup } from '../../backends/sqlite/backup/index.js'
import { loadModelFolder } from '../../ml/model-folder.js'

const USAGE = 'usage: npm run restore -- <file> [--data-dir <dir>]   (into an empty or new folder; MODEL_DIR must be the model the backup was made with)'

async function main (): Promise<void> {
  const args = process.argv.slice(2)
  const i = args.indexOf('--data-dir')
  const dataDir = i >= 0 ? args[i + 1] : undefined
  const positional = args.filter((a, j) => !a.startsWith('-') && !(i >= 0 && j === i + 1))
  if (positional.length !== 1 || (i >= 0 && dataDir === undefined) || args.includes('--help') || args.includes('-h')) {
    process.stderr.write(`${USAGE}\n`)
    process.exit(positional.length === 1 && dataDir !== undefined ? 0 : 2)
  }
  let config: Config
  try {
    config = loadConfig({ LOG_LEVEL: 'warn', ...process.env, ...(dataDir === undefined ? {} : { DATA_DIR: dataDir }) })
  } catch (err) {
    if (err instanceof ConfigError) { process.stderr.write(`${err.message}\n`); process.exit(78) }
    throw err
  }
  const model = (await loadModelFolder(config.modelDir)).config
  const file = path.resolve(positional[0]!)
  try {
    const { dataDir: restored, manifest } = await restoreBackup(file, config.dataDir, { modelId: model.modelId, dim: model.embeddingDim })
    process.stdout.write(`restored ${manifest.images} images and ${manifest.texts} texts (backup of ${manifest.createdAt}, model ${manifest.modelId}) into ${restored}\n`)
    for (const j of manifest.unfinishedJobs) {
      process.stdout.write(`index job ${j.id} (${j.kind}) stopped at ${j.done + j.failed}/${j.total} items (${j.done} done, ${j.failed} failed): it resumes from there when a server starts on ${restored}\n`)
    }
  } catch (err) {
    if (!(err instanceof BackupFileError)) throw err
    process.stderr.write(`restore refused: ${err.message}\n`)
    process.exit(1)
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`restore failed: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
