/**
 * A PostgreSQL for tests, best first:
 *   1. DATABASE_URL from the environment (a fresh database per test file, dropped at the end);
 *   2. a throwaway cluster from the installed initdb + pg_ctl, in a temp dir on a free port
 *      (run as the `postgres` user when we are root: initdb refuses root);
 *   3. PGlite (real PostgreSQL + pgvector compiled to WASM) served over its socket, so `pg` talks
 *      to it as to a server. It is ONE session behind the socket: tests that need two real
 *      connections skip there.
 * When none works the result carries `skip`: the reason a test prints when it skips.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pg from 'pg'

export type TestPostgresKind = 'external' | 'cluster' | 'pglite'

export interface TestPostgres {
  kind: TestPostgresKind
  /** a fresh, empty database of its own */
  url: string
  /** false on PGlite: one session behind the socket, so two connections would share a transaction */
  multiConnection: boolean
  /** another fresh, empty database (not on PGlite) */
  newDatabase: () => Promise<string>
  /**
   * stops the server (own cluster only); `immediate` is a crash: no checkpoint, sessions cut, and
   * recovery from the WAL at the next start (use it with `synchronousCommit`)
   */
  serverDown?: (mode?: 'fast' | 'immediate') => Promise<void>
  /** starts it again on the same port and data */
  serverUp?: () => Promise<void>
  stop: () => Promise<void>
}

export type TestPostgresResult = TestPostgres | { skip: string }

export interface StartOptions {
  /** `server`: DATABASE_URL or a local cluster; `pglite`: PGlite only; `auto` (default): server, else PGlite */
  engine?: 'auto' | 'server' | 'pglite'
  /** PGlite only: load the pgvector extension (default true; false makes a server without it) */
  vector?: boolean
  /**
   * own cluster only: synchronous_commit=on, so an acknowledged commit survives a crash
   * (`serverDown('immediate')`); default off, for speed. fsync stays off: a crash of the server's
   * processes keeps what reached the OS, only a crash of the machine would not.
   */
  synchronousCommit?: boolean
}

export async function startTestPostgres (opts: StartOptions = {}): Promise<TestPostgresResult> {
  const engine = opts.engine ?? 'auto'
  const reasons: string[] = []
  if (engine !== 'pglite') {
    const external = process.env.DATABASE_URL
    if (external !== undefined && external.trim() !== '') return await fromExternal(external.trim())
    const cluster = await startCluster(opts.synchronousCommit === true)
    if ('url' in cluster) return cluster
    reasons.push(cluster.skip)
    if (engine === 'server') return { skip: reasons.join('; ') }
  }
  const lite = await startPglite(opts.vector ?? true)
  if ('url' in lite) return lite
  reasons.push(lite.skip)
  return { skip: reasons.join('; ') }
}

const dbName = (): string => `align_test_${randomBytes(5).toString('hex')}`

function withDatabase (url: string, db: string): string {
  const u = new URL(url)
  u.pathname = `/${db}`
  return u.toString()
}

/** CREATE DATABASE on the server of `adminUrl`; returns its URL */
async function createDatabase (adminUrl: string, created: string[]): Promise<string> {
  const name = dbName()
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    await client.query(`CREATE DATABASE ${name}`)
  } finally {
    await client.end()
  }
  created.push(name)
  return withDatabase(adminUrl, name)
}

async function dropDatabases (adminUrl: string, names: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    for (const name of names) await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  } finally {
    await client.end()
  }
}

async function fromExternal (adminUrl: string): Promise<TestPostgresResult> {
  const created: string[] = []
  try {
    const url = await createDatabase(adminUrl, created)
    return {
      kind: 'external',
      url,
      multiConnection: true,
      newDatabase: async () => await createDatabase(adminUrl, created),
      stop: async () => { await dropDatabases(adminUrl, created) }
    }
  } catch (err) {
    return { skip: `DATABASE_URL is set but a test database could not be created there: ${(err as Error).message}` }
  }
}

/** the newest installed PostgreSQL's bin folder (PG_BINDIR, else /usr/lib/postgresql/N/bin, else pg_config on PATH) */
export function findBinDir (): string | undefined {
  const fromEnv = process.env.PG_BINDIR
  if (fromEnv !== undefined && existsSync(path.join(fromEnv, 'initdb'))) return fromEnv
  const root = '/usr/lib/postgresql'
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a))
    if (versions[0] !== undefined) return path.join(root, versions[0], 'bin')
  }
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim()
    return existsSync(path.join(dir, 'initdb')) ? dir : undefined
  } catch {
    return undefined
  }
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => { resolve(port) })
    })
  })
}

/** initdb refuses root: run the cluster as `postgres` then */
function clusterUser (): { uid: number, gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim())
    return { uid, gid }
  } catch {
    return undefined
  }
}

async function startCluster (synchronousCommit: boolean): Promise<TestPostgresResult> {
  const bin = findBinDir()
  if (bin === undefined) return { skip: 'no PostgreSQL binaries (initdb) found: run scripts/install-postgres.sh or set DATABASE_URL' }
  const share = execFileSync(path.join(bin, 'pg_config'), ['--sharedir'], { encoding: 'utf8' }).trim()
  if (!existsSync(path.join(share, 'extension', 'vector.control'))) {
    return { skip: `PostgreSQL in ${bin} has no pgvector extension: run scripts/install-postgres.sh` }
  }
  const user = clusterUser()
  if (process.getuid?.() === 0 && user === undefined) return { skip: 'running as root and there is no postgres user to run initdb as' }
  const dir = mkdtempSync(path.join(tmpdir(), 'align-pg-'))
  if (user !== undefined) chownSync(dir, user.uid, user.gid)
  const data = path.join(dir, 'data')
  const run = (cmd: string, args: string[]): ReturnType<typeof spawnSync> =>
    spawnSync(path.join(bin, cmd), args, { encoding: 'utf8', cwd: dir, ...(user ?? {}) })
  const init = run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'])
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true })
    return { skip: `initdb failed: ${String(init.stderr).trim()}` }
  }
  // throwaway data: durability settings off, so the tests measure the backend and not the disk
  // (synchronous_commit on for the crash tests: an acknowledged commit must outlive `pg_ctl -m immediate`)
  const serverOptions = (port: number): string =>
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=${synchronousCommit ? 'on' : 'off'} -c full_page_writes=off -c max_connections=50`
  let port = 0
  const up = async (): Promise<void> => {
    for (let attempt = 0; attempt < 3; attempt++) {
      port = port === 0 || attempt > 0 ? await freePort() : port
      const r = run('pg_ctl', ['-D', data, '-l', path.join(dir, 'log'), '-w', '-t', '60', '-o', serverOptions(port), 'start'])
      if (r.status === 0) return
    }
    throw new Error(`pg_ctl start failed; see ${path.join(dir, 'log')}`)
  }
  // fast by default: with synchronous_commit off an immediate stop could lose the last commits
  const down = (mode: 'fast' | 'immediate'): void => { run('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']) }
  const cleanup = (): void => {
    down('immediate')
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    await up()
  } catch (err) {
    cleanup()
    return { skip: (err as Error).message }
  }
  // a crashed test file must not leave a server behind
  process.once('exit', cleanup)
  const created: string[] = []
  const adminUrl = (): string => `postgres://postgres@127.0.0.1:${port}/postgres`
  const url = await createDatabase(adminUrl(), created)
  return {
    kind: 'cluster',
    url,
    multiConnection: true,
    newDatabase: async () => await createDatabase(adminUrl(), created),
    // same port on the way back up: clients reconnect to the URL they were given
    serverDown: async (mode = 'fast') => {
      if (mode === 'immediate' && !synchronousCommit) throw new Error('an immediate stop with synchronous_commit off may lose acknowledged commits: start with { synchronousCommit: true }')
      down(mode)
    },
    serverUp: async () => {
      const r = run('pg_ctl', ['-D', data, '-l', path.join(dir, 'log'), '-w', '-t', '60', '-o', serverOptions(port), 'start'])
      if (r.status !== 0) throw new Error(`pg_ctl start failed: ${String(r.stderr)}`)
    },
    stop: async () => {
      process.removeListener('exit', cleanup)
      cleanup()
    }
  }
}

async function startPglite (withVector: boolean): Promise<TestPostgresResult> {
  try {
    const { PGlite } = await import('@electric-sql/pglite')
    const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket')
    const db = withVector
      ? await PGlite.create({ extensions: { vector: (await import('@electric-sql/pglite-pgvector')).vector } })
      : await PGlite.create()
    // several connections are accepted (so a reconnect can overlap the close of the one before it,
    // which a limit of 1 refuses), but they share PGlite's one session: tests use one at a time
    const server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1', maxConnections: 4 })
    await server.start()
    const url = `postgres://postgres@${server.getServerConn()}/postgres`
    return {
      kind: 'pglite',
      url,
      multiConnection: false,
      newDatabase: async () => { throw new Error('PGlite serves one database') },
      stop: async () => {
        await server.stop()
        await db.close()
      }
    }
  } catch (err) {
    return { skip: `PGlite could not start: ${(err as Error).message}` }
  }
}
