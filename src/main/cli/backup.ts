/**
 * `npm run backup -- <file>`: one backup of DATA_DIR into <file>.
 * While a server holds DATA_DIR (its lock, data-dir-lock.ts) the backup is written by that server
 * (POST /v1/backups on http://127.0.0.1:PORT, or --url; API_KEY is sent as the Bearer key) and
 * downloaded; the copy in its BACKUP_DIR stays. On a stopped DATA_DIR this process takes the lock
 * and writes the backup itself.
 */
import { createWriteStream } from 'node:fs'
import { mkdir, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { ConfigError, loadConfig, type Config } from '../config/config.js'
import { DataDirBusyError, lockDataDir } from '../data-dir-lock.js'
import { openSqliteBackend } from '../../backends/sqlite/open-sqlite-backend.js'
import { writeBackup } from '../../backends/sqlite/backup/index.js'
import { DB_FILE } from '../../backends/sqlite/store/open-store.js'

const USAGE = 'usage: npm run backup -- <file> [--data-dir <dir>] [--url <server url>]   (a running server writes it; a stopped DATA_DIR is backed up directly)'

function option (args: string[], name: string): string | undefined {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}

async function throughServer (config: Config, base: string, file: string): Promise<void> {
  const headers: Record<string, string> = config.apiKey === undefined ? {} : { authorization: `Bearer ${config.apiKey}` }
  const res = await fetch(new URL('/v1/backups', base), { method: 'POST', headers })
  const body = await res.json() as { name?: string, bytes?: number, images?: number, message?: string }
  if (res.status !== 201 || body.name === undefined) throw new Error(`the server at ${base} answered ${res.status}: ${body.message ?? JSON.stringify(body)}`)
  const dl = await fetch(new URL(`/v1/backups/${encodeURIComponent(body.name)}`, base), { headers })
  if (!dl.ok || dl.body === null) throw new Error(`downloading ${body.name} from ${base} answered ${dl.status}`)
  const partial = `${file}.partial`
  await pipeline(Readable.fromWeb(dl.body as import('node:stream/web').ReadableStream), createWriteStream(partial))
  await rename(partial, file)
  process.stderr.write(`the server wrote ${body.name} (${body.images} images, ${body.bytes} bytes; kept in its BACKUP_DIR too) → ${file}\n`)
}

async function main (): Promise<void> {
  const args = process.argv.slice(2)
  const positional = args.filter((a, i) => !a.startsWith('-') && !['--data-dir', '--url'].includes(args[i - 1] ?? ''))
  if (positional.length !== 1 || args.includes('--help') || args.includes('-h')) {
    process.stderr.write(`${USAGE}\n`)
    process.exit(positional.length === 1 ? 0 : 2)
  }
  const file = path.resolve(positional[0]!)
  let config: Config
  try {
    const dataDir = option(args, '--data-dir')
    config = loadConfig({ ...process.env, ...(dataDir === undefined ? {} : { DATA_DIR: dataDir }) })
  } catch (err) {
    if (err instanceof ConfigError) { process.stderr.write(`${err.message}\n`); process.exit(78) }
    throw err
  }
  if (config.database !== undefined) {
    process.stderr.write('DATABASE_URL is set: back up PostgreSQL with pg_dump -Fc (see "Backup and restore" in the README)\n')
    process.exit(2)
  }
  await mkdir(path.dirname(file), { recursive: true })
  let lock
  try {
    lock = lockDataDir(config.dataDir, 'npm run backup')
  } catch (err) {
    if (!(err instanceof DataDirBusyError)) throw err
    const url = option(args, '--url') ?? `http://127.0.0.1:${config.port}`
    process.stderr.write(`${err.message}: asking it, at ${url}\n`)
    await throughServer(config, url, file)
    return
  }
  try {
    await backupStopped(config, file)
  } finally {
    lock.release()
  }
}

/** Opens the stopped DATA_DIR under the identity it records (a backup needs no model) and writes the backup to `file`. */
async function backupStopped (config: Config, file: string): Promise<void> {
  const Database = (await import('better-sqlite3')).default
  const db = new Database(path.join(config.dataDir, DB_FILE), { readonly: true, fileMustExist: true })
  const meta = (key: string): string | undefined => (db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value
  const identity = { modelId: meta('model_id') ?? '', dim: Number(meta('dim')) }
  db.close()
  const backend = await openSqliteBackend({ dataDir: config.dataDir, hnsw: config.hnsw }, identity)
  try {
    const m = await writeBackup({ store: backend.store, images: backend.images.index, texts: backend.texts.index }, file)
    process.stderr.write(`wrote ${file}: ${m.images} images, ${m.texts} texts, model ${m.modelId}\n`)
  } catch (err) {
    await rm(`${file}.partial`, { force: true })
    throw err
  } finally {
    await backend.close()
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`backup failed: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
