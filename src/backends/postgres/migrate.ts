/**
 * Brings a database up to this version's schema at start. Everything here runs on one dedicated
 * connection holding node-pg-migrate's advisory lock, so processes starting at once take turns:
 * the first migrates, the others find the work done. Three steps, in order:
 *   1. the versioned migrations in ./migrations (node-pg-migrate; the model's dimension reaches
 *      them as the session setting align_search.dim, see 0001_initial-schema.sql);
 *   2. the model identity: a database written by another model (or dimension) is refused;
 *   3. the record of what built the index (index-settings.ts): written at the first start, then
 *      followed; the indexes it names are built only where missing. A process configured otherwise
 *      is told each difference and follows the database; nothing here drops or rebuilds an index.
 * The connection has no statement timeout (migrations and index builds take what they take).
 */
import { fileURLToPath } from 'node:url'
import { PG_MIGRATE_LOCK_ID, runner } from 'node-pg-migrate'
import pg from 'pg'
import { ConflictError } from '../../core/errors.js'
import { withoutPassword } from '../../core/secrets.js'
import type { Logger } from '../../core/types.js'
import type { BackendIdentity } from '../ports.js'
import { ensureRecordedIndexes, inferIndexSettings, readIndexRecord, settingsDifferences, writeIndexRecord, type IndexRecord, type IndexSettings } from './index-settings.js'
import { connectionConfig, isDatabaseError } from './pg-pool.js'
import type { ConnectionTimeouts } from './postgres-options.js'
import { assertVectorExtension, cannotCreateExtension, readVectorExtension } from './vector-extension.js'

export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations', import.meta.url))
export const MIGRATIONS_TABLE = 'align_search_migrations'
export { hnswIndexName, indexedExpression, pgvectorIndexParams, VECTOR_TABLES, type IndexSettings, type VectorTable } from './index-settings.js'

export interface PreparedDatabase {
  /** the pgvector version created in the database */
  vectorVersion: string
  /** the database's record of the index: what every search follows */
  index: IndexRecord
  /** each configured setting that differs from the record (followed, not applied) */
  differences: string[]
}

/** "user@host:port/db": the database as messages name it, never with a password */
export function describeDatabase (databaseUrl: string): string {
  try {
    // masked first: a password holding '/' or '#' otherwise parses partly into the host and path
    const u = new URL(withoutPassword(databaseUrl))
    const host = u.hostname !== '' ? u.hostname : (u.searchParams.get('host') ?? 'localhost')
    return `${u.username === '' ? '' : `${decodeURIComponent(u.username)}@`}${host}${u.port === '' ? '' : `:${u.port}`}${u.pathname === '/' ? '' : u.pathname}`
  } catch {
    return 'DATABASE_URL'
  }
}

export async function prepareDatabase (databaseUrl: string, identity: BackendIdentity, index: IndexSettings, logger?: Logger, timeouts?: ConnectionTimeouts): Promise<PreparedDatabase> {
  const database = describeDatabase(databaseUrl)
  const client = new pg.Client({ ...connectionConfig(databaseUrl, 'align-search migrate', 'maintenance', timeouts), connectionTimeoutMillis: 10_000 })
  client.on('error', () => {}) // a lost connection also fails the query in flight, which reports it
  try {
    await client.connect()
  } catch (err) {
    await client.end().catch(() => {})
    // the address goes to the log only: this message may reach clients (/ready)
    logger?.warn({ database, err: (err as Error).message }, 'cannot connect to PostgreSQL')
    throw new Error('cannot connect to PostgreSQL', { cause: err })
  }
  try {
    assertVectorExtension(await readVectorExtension(client), database)
    await client.query('SELECT pg_advisory_lock($1)', [String(PG_MIGRATE_LOCK_ID)])
    try {
      await migrate(client, identity.dim, database, logger)
      const vector = await readVectorExtension(client)
      assertVectorExtension(vector, database) // an older extension may have been created before us
      await checkIdentity(client, identity, database)
      let record = await readIndexRecord(client)
      if (record === undefined) {
        record = { ...identity, ...await inferIndexSettings(client, index) }
        await writeIndexRecord(client, 'active', record)
      }
      await ensureRecordedIndexes(client, record, logger)
      const differences = settingsDifferences(record, index)
      if (differences.length > 0) {
        logger?.warn({ differences, database: { vectorType: record.vectorType, M: record.M, efConstruction: record.efConstruction } },
          `index settings differ from the database's (${differences.join('; ')}): following the database and leaving its index as it is. ` +
          'Make the settings match on every machine, or change the index with: npm run db:reindex -- --vector-type <vector|halfvec> --m <M> --ef-construction <n>')
      }
      return { vectorVersion: vector.installed ?? vector.available ?? 'unknown', index: record, differences }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [String(PG_MIGRATE_LOCK_ID)]).catch(() => {})
    }
  } finally {
    await client.end().catch(() => {})
  }
}

async function migrate (client: pg.Client, dim: number, database: string, logger: Logger | undefined): Promise<void> {
  await client.query("SELECT set_config('align_search.dim', $1, false)", [String(dim)])
  // migrate into the schema the URL's search_path names first (public by default)
  const { rows } = await client.query<{ s: string[] }>('SELECT current_schemas(false)::text[] AS s')
  const schemas = rows[0]?.s.length === 0 || rows[0] === undefined ? ['public'] : rows[0].s
  const quiet = (msg: string): void => { logger?.debug({ database }, msg) }
  try {
    const ran = await runner({
      dbClient: client,
      dir: MIGRATIONS_DIR,
      direction: 'up',
      migrationsTable: MIGRATIONS_TABLE,
      schema: schemas,
      migrationsSchema: schemas[0]!,
      noLock: true, // we hold the same lock already, for the identity and index steps too
      checkOrder: true,
      logger: { debug: quiet, info: quiet, warn: quiet, error: (msg: string) => { logger?.error({ database }, msg) } }
    })
    if (ran.length > 0) logger?.info({ database, migrations: ran.map((m) => m.name) }, 'PostgreSQL schema migrated')
  } catch (err) {
    if (isDatabaseError(err) && err.code === '42501' && /extension/i.test(err.message)) throw cannotCreateExtension(database, err.message)
    throw err
  }
}

async function checkIdentity (client: pg.Client, { modelId, dim }: BackendIdentity, database: string): Promise<void> {
  await client.query("INSERT INTO meta (key, value) VALUES ('model_id', $1), ('dim', $2), ('distance', 'cosine') ON CONFLICT (key) DO NOTHING", [modelId, String(dim)])
  const { rows } = await client.query<{ key: string, value: string }>("SELECT key, value FROM meta WHERE key IN ('model_id', 'dim')")
  const stored = new Map(rows.map((r) => [r.key, r.value]))
  const storedModel = stored.get('model_id')
  const storedDim = stored.get('dim')
  if (storedModel !== modelId || Number(storedDim) !== dim) {
    const slots = await client.query<{ slot: string, model_id: string, model_dir: string | null, standby: { state?: string } | null }>(
      "SELECT slot, model_id, model_dir, standby FROM index_settings WHERE slot IN ('active', 'standby')")
    const active = slots.rows.find((r) => r.slot === 'active')
    const activeDir = active?.model_dir ?? undefined
    const standby = slots.rows.find((r) => r.slot === 'standby')
    if (standby !== undefined && standby.model_id === modelId) {
      // the other model of a switch: say which is which rather than "re-index", and tell the caller
      // which folder serves this database (the server follows it, see src/main/wiring/open-services.ts)
      const dir = activeDir
      const building = standby.standby?.state === 'building'
      const err = new ConflictError(
        `database ${database} serves model ${storedModel ?? '?'} (dim ${storedDim ?? '?'}${dir === undefined ? '' : `, MODEL_DIR ${dir}`}); ` +
        `${modelId} is its standby model (${building ? 'a switch to it is under way' : 'the previous model, kept for a swap back'}). ` +
        `Start with MODEL_DIR=${dir ?? '<the folder of ' + (storedModel ?? '?') + '>'}; ${building ? 'the switch resumes and swaps when complete' : 'swap back with POST /v1/models/swap'}. See README "Changing the model"`)
      if (dir !== undefined) (err as { activeModelDir?: string }).activeModelDir = dir
      throw err
    }
    throw new ConflictError(
      `database ${database} was built with model ${storedModel ?? '?'} (dim ${storedDim ?? '?'}); this server runs ${modelId} (dim ${dim}). ` +
      `Embeddings of different models cannot be compared. Start with MODEL_DIR=${activeDir ?? '<the folder of ' + (storedModel ?? '?') + '>'} and switch models without downtime ` +
      '(POST /v1/models/switch, npm run model:switch), or point DATABASE_URL at an empty database and re-index: npm run index -- <dir>. See README "Changing the model"')
  }
}
