/**
 * Brings a database up to this version's schema at start. Everything here runs on one dedicated
 * connection holding node-pg-migrate's advisory lock, so processes starting at once take turns:
 * the first migrates, the others find the work done. Three steps, in order:
 *   1. the versioned migrations in ./migrations (node-pg-migrate; the model's dimension reaches
 *      them as the session setting align_search.dim, see 0001_initial-schema.sql);
 *   2. the model identity: a database written by another model (or dimension) is refused;
 *   3. the HNSW indexes, which follow settings rather than versions (PG_VECTOR_TYPE, HNSW_M,
 *      HNSW_EF_CONSTRUCTION), so they are ensured at every start instead of migrated once.
 */
import { fileURLToPath } from 'node:url'
import { PG_MIGRATE_LOCK_ID, runner } from 'node-pg-migrate'
import pg from 'pg'
import { ConflictError } from '../../core/errors.js'
import type { Logger } from '../../core/types.js'
import type { BackendIdentity } from '../ports.js'
import { isDatabaseError } from './pg-pool.js'
import type { PgVectorType } from './postgres-options.js'
import { assertVectorExtension, cannotCreateExtension, readVectorExtension } from './vector-extension.js'

export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations', import.meta.url))
export const MIGRATIONS_TABLE = 'align_search_migrations'
export const VECTOR_TABLES = ['images', 'texts'] as const
export type VectorTable = typeof VECTOR_TABLES[number]

export interface IndexSettings { vectorType: PgVectorType, M: number, efConstruction: number }

export interface PreparedDatabase {
  /** the pgvector version created in the database */
  vectorVersion: string
  /** the images index as it is stored (it may predate the current settings) */
  index: { M: number, efConstruction: number }
}

/** "user@host:port/db": the database as messages name it, never with a password */
export function describeDatabase (databaseUrl: string): string {
  try {
    const u = new URL(databaseUrl)
    const host = u.hostname !== '' ? u.hostname : (u.searchParams.get('host') ?? 'localhost')
    return `${u.username === '' ? '' : `${decodeURIComponent(u.username)}@`}${host}${u.port === '' ? '' : `:${u.port}`}${u.pathname === '/' ? '' : u.pathname}`
  } catch {
    return 'DATABASE_URL'
  }
}

export async function prepareDatabase (databaseUrl: string, identity: BackendIdentity, index: IndexSettings, logger?: Logger): Promise<PreparedDatabase> {
  const database = describeDatabase(databaseUrl)
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000, application_name: 'align-search migrate' })
  client.on('error', () => {}) // a lost connection also fails the query in flight, which reports it
  try {
    await client.connect()
  } catch (err) {
    await client.end().catch(() => {})
    throw new Error(`cannot connect to PostgreSQL at ${database}: ${(err as Error).message}`, { cause: err })
  }
  try {
    assertVectorExtension(await readVectorExtension(client), database)
    await client.query('SELECT pg_advisory_lock($1)', [String(PG_MIGRATE_LOCK_ID)])
    try {
      await migrate(client, identity.dim, database, logger)
      const vector = await readVectorExtension(client)
      assertVectorExtension(vector, database) // an older extension may have been created before us
      await checkIdentity(client, identity, database)
      let stored = { M: index.M, efConstruction: index.efConstruction }
      for (const table of VECTOR_TABLES) {
        const built = await ensureHnswIndex(client, table, identity.dim, index, logger)
        if (table === 'images') stored = built
      }
      return { vectorVersion: vector.installed ?? vector.available ?? 'unknown', index: stored }
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
    throw new ConflictError(
      `database ${database} was built with model ${storedModel ?? '?'} (dim ${storedDim ?? '?'}); this server runs ${modelId} (dim ${dim}). ` +
      'Embeddings of different models cannot be compared. Point DATABASE_URL at an empty database, or empty this one and re-index: npm run index -- <dir>. See README "Changing the model"')
  }
}

/** pgvector's bounds: m in 2..100, ef_construction at least 2·m */
export function pgvectorIndexParams (M: number, efConstruction: number): { M: number, efConstruction: number } {
  const m = Math.min(100, Math.max(2, M))
  return { M: m, efConstruction: Math.min(1000, Math.max(efConstruction, 2 * m)) }
}

export function hnswIndexName (table: VectorTable, vectorType: PgVectorType): string {
  return `${table}_embedding_${vectorType}_hnsw`
}

/** the indexed expression, which a search must repeat verbatim for the planner to use the index */
export function indexedExpression (vectorType: PgVectorType, dim: number): string {
  return vectorType === 'vector' ? 'embedding' : `(embedding::halfvec(${dim}))`
}

async function ensureHnswIndex (client: pg.Client, table: VectorTable, dim: number, settings: IndexSettings, logger: Logger | undefined): Promise<{ M: number, efConstruction: number }> {
  const name = hnswIndexName(table, settings.vectorType)
  const other = hnswIndexName(table, settings.vectorType === 'vector' ? 'halfvec' : 'vector')
  const wanted = pgvectorIndexParams(settings.M, settings.efConstruction)
  const exists = await client.query('SELECT 1 FROM pg_class WHERE oid = to_regclass($1)', [name])
  if (exists.rowCount === 0) {
    const ops = settings.vectorType === 'vector' ? 'vector_cosine_ops' : 'halfvec_cosine_ops'
    logger?.info({ table, index: name, ...wanted }, 'building the HNSW index (once; large tables take a while)')
    await client.query(`CREATE INDEX ${name} ON ${table} USING hnsw (${indexedExpression(settings.vectorType, dim)} ${ops}) WITH (m = ${wanted.M}, ef_construction = ${wanted.efConstruction})`)
  }
  // one index per table: the other type's graph would only cost memory and write time
  await client.query(`DROP INDEX IF EXISTS ${other}`)
  const { rows } = await client.query<{ reloptions: string[] | null }>('SELECT reloptions FROM pg_class WHERE oid = to_regclass($1)', [name])
  const options = new Map((rows[0]?.reloptions ?? []).map((o) => o.split('=') as [string, string]))
  const stored = { M: Number(options.get('m') ?? 16), efConstruction: Number(options.get('ef_construction') ?? 64) }
  if (stored.M !== wanted.M || stored.efConstruction !== wanted.efConstruction) {
    logger?.warn({ table, index: name, stored, configured: wanted },
      `the HNSW index was built with other parameters; to rebuild it with the configured ones: DROP INDEX ${name}; then restart`)
  }
  return stored
}
