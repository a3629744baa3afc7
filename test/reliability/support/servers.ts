/**
 * The service under test, with the defaults the reliability tests share: its own temporary
 * DATA_DIR and IMPORT_DIR, no demo pool, quiet logs. Either the real server process
 * (`spawnService`) or the real app in this process (`buildService`, for `app.inject`).
 */
import { pino } from 'pino'
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../../src/http/app.js'
import { loadConfig, type Config } from '../../../src/main/config/config.js'
import { toServicesConfig } from '../../../src/main/wiring/services-config.js'
import { openServices } from '../../../src/main/wiring/open-services.js'
import { startServer, type RunningServer } from '../../helpers/spawn-server.js'
import { Api, httpTransport, injectTransport } from './api.js'

export interface Dirs {
  root: string
  dataDir: string
  importDir: string
  /** removes the whole temporary tree */
  remove: () => void
}

/** A fresh temporary tree: root/data and root/import. */
export function tempDirs (prefix = 'align-rel-'): Dirs {
  const root = mkdtempSync(path.join(tmpdir(), prefix))
  const dataDir = path.join(root, 'data')
  const importDir = path.join(root, 'import')
  mkdirSync(dataDir, { recursive: true })
  mkdirSync(importDir, { recursive: true })
  return { root, dataDir, importDir, remove: () => rmSync(root, { recursive: true, force: true }) }
}

/**
 * The model the reliability tests run: the committed random-init tiny ALIGN fixture. Its
 * embeddings tell apart every generated image, which "search by an image finds it first" needs,
 * and it does not change when align-mini is retrained. RELIABILITY_MODEL_DIR overrides it.
 */
export const MODEL_DIR = process.env.RELIABILITY_MODEL_DIR ?? 'test/fixtures/align-tiny'

/** The environment every reliability test starts from; `extra` wins. */
export function serviceEnv (dirs: Pick<Dirs, 'dataDir' | 'importDir'>, extra: Record<string, string> = {}): Record<string, string> {
  return {
    MODEL_DIR,
    DATA_DIR: dirs.dataDir,
    IMPORT_DIR: dirs.importDir,
    DEMO_POOL: '',
    LOG_LEVEL: process.env.RELIABILITY_LOG_LEVEL ?? 'warn',
    // variables a developer's shell might carry must not leak into the server under test
    API_KEY: '',
    API_KEY_READS: '',
    RATE_LIMIT_MAX: '',
    CORS_ORIGIN: '',
    ...extra
  }
}

export interface SpawnedService { server: RunningServer, api: Api }

/** Spawns the built server (`node [nodeArgs] dist/main/server.js`) and waits for /ready. */
export async function spawnService (env: Record<string, string>, nodeArgs: string[] = []): Promise<SpawnedService> {
  const server = await startServer(env, { timeoutMs: 120_000, verbose: process.env.RELIABILITY_VERBOSE === '1', nodeArgs })
  return { server, api: new Api(httpTransport(server.url)) }
}

export interface InProcessService { app: FastifyInstance, config: Config, api: Api, close: () => Promise<void> }

/** Builds the real app in this process from `env` (as the server would), for `app.inject`. */
export async function buildService (env: Record<string, string>): Promise<InProcessService> {
  const config = loadConfig({ ...process.env, ...env })
  mkdirSync(config.dataDir, { recursive: true })
  mkdirSync(config.importDir, { recursive: true })
  const services = await openServices(toServicesConfig(config), pino({ level: 'silent' }))
  const app = await buildApp({ config, services, logger: false, web: true })
  return { app, config, api: new Api(injectTransport(app)), close: async () => { await app.close() } }
}

/** Resident set size of a process, bytes (Linux /proc). */
export async function rssOf (pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises')
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status)
  if (m === null) throw new Error(`no VmRSS for ${pid}`)
  return Number(m[1]) * 1024
}
