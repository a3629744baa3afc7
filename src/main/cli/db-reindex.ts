/**
 * `npm run db:reindex -- --vector-type halfvec [--m 16] [--ef-construction 200] [--grace 65s]`:
 * changes the database's HNSW index, the one explicit way to do so (a process started with other
 * settings follows the database's record instead). The new index is built CONCURRENTLY beside the
 * old one while searches and writes go on, the record is swapped, running processes follow it
 * within RECORD_REFRESH_MS, and the old index is dropped after `--grace`
 * (src/backends/postgres/index-settings.ts). Unset options keep the database's current value.
 * Safe to run again after a crash: a half-built index of an earlier run is dropped first.
 */
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { pino } from 'pino'
import { pgvectorIndexParams, readIndexRecord, reindex, RECORD_REFRESH_MS, type IndexSettings } from '../../backends/postgres/index-settings.js'
import { connectionConfig } from '../../backends/postgres/pg-pool.js'
import type { ConnectionTimeouts, PgVectorType } from '../../backends/postgres/postgres-options.js'
import type { Logger } from '../../core/types.js'
import { ConfigError, loadConfig } from '../config/config.js'

const USAGE = 'usage: npm run db:reindex -- [--vector-type vector|halfvec] [--m <2..100>] [--ef-construction <n>] [--grace <duration, default 65s>]'

/** advisory lock key of db:reindex: one at a time per database (distinct from node-pg-migrate's and the queue's) */
const REINDEX_LOCK = '7423991052018744002'

export interface ReindexRequest {
  vectorType?: PgVectorType
  M?: number
  efConstruction?: number
  /** ms between the swap and the drop of the old index (default: two refreshes and 5 s) */
  graceMs?: number
}

/** Parses the command line; throws with the usage on anything it does not know. */
export function parseReindexArgs (argv: string[]): ReindexRequest {
  const { values } = parseArgs({ args: argv, options: { 'vector-type': { type: 'string' }, m: { type: 'string' }, 'ef-construction': { type: 'string' }, grace: { type: 'string' } }, strict: true, allowPositionals: false })
  const req: ReindexRequest = {}
  const vt = values['vector-type']
  if (vt !== undefined) {
    if (vt !== 'vector' && vt !== 'halfvec') throw new Error(`--vector-type must be vector or halfvec, got "${vt}". ${USAGE}`)
    req.vectorType = vt
  }
  const int = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined
    if (!/^\d+$/.test(v)) throw new Error(`--${name} must be a positive integer, got "${v}". ${USAGE}`)
    return Number(v)
  }
  const M = int('m', values.m)
  if (M !== undefined) req.M = M
  const ef = int('ef-construction', values['ef-construction'])
  if (ef !== undefined) req.efConstruction = ef
  if (values.grace !== undefined) {
    const m = /^(\d+)(ms|s|m)?$/.exec(values.grace)
    if (m === null) throw new Error(`--grace must be a duration (e.g. 65s), got "${values.grace}". ${USAGE}`)
    req.graceMs = Number(m[1]) * (m[2] === 'm' ? 60_000 : m[2] === 'ms' ? 1 : 1000)
  }
  if (req.vectorType === undefined && req.M === undefined && req.efConstruction === undefined) throw new Error(`nothing to change. ${USAGE}`)
  return req
}

/**
 * Runs the reindex on `databaseUrl`; resolves with the settings now active, and whether anything
 * changed. Holds REINDEX_LOCK on its own connection, which has no statement timeout.
 */
export async function runReindex (databaseUrl: string, req: ReindexRequest, logger: Logger, timeouts?: ConnectionTimeouts): Promise<{ changed: boolean, settings: IndexSettings }> {
  const client = new pg.Client(connectionConfig(databaseUrl, 'align-search db:reindex', 'maintenance', timeouts))
  client.on('error', () => {}) // a lost connection also fails the statement in flight, which reports it
  await client.connect()
  try {
    const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [REINDEX_LOCK])
    if (rows[0]?.locked !== true) throw new Error('another db:reindex runs on this database; wait for it to finish')
    const active = await readIndexRecord(client)
    if (active === undefined) throw new Error('the database has no index record yet: start the server (or a worker) on it once, then run db:reindex')
    const params = pgvectorIndexParams(req.M ?? active.M, req.efConstruction ?? active.efConstruction)
    const target: IndexSettings = { vectorType: req.vectorType ?? active.vectorType, ...params }
    const changed = await reindex(client, target, { graceMs: req.graceMs ?? 2 * RECORD_REFRESH_MS + 5000, logger })
    return { changed, settings: target }
  } finally {
    await client.end().catch(() => {})
  }
}

async function main (): Promise<void> {
  const logger = pino({ base: undefined })
  let req: ReindexRequest
  try {
    req = parseReindexArgs(process.argv.slice(2))
  } catch (err) {
    logger.fatal((err as Error).message)
    process.exit(64) // EX_USAGE
  }
  let config
  try {
    config = loadConfig()
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    logger.fatal({ problems: err.problems }, err.message)
    process.exit(78)
  }
  if (config.database === undefined) {
    logger.fatal('db:reindex needs DATABASE_URL: the embedded backend rebuilds its index from HNSW_* at start')
    process.exit(78)
  }
  const { changed, settings } = await runReindex(config.database.url, req, logger, config.database.timeouts)
  logger.info(settings, changed ? 'the index is rebuilt with these settings; set the same PG_VECTOR_TYPE and HNSW_* on every machine' : 'the index already has these settings: nothing to do')
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    pino({ base: undefined }).fatal({ err }, 'db:reindex failed')
    process.exit(1)
  })
}
