/**
 * `npm run worker`: an index worker, the process concerns only (config, logger, optional health
 * port, graceful shutdown). It takes batches from the shared queue in PostgreSQL (DATABASE_URL),
 * encodes them with this machine's EXECUTION_PROVIDER and commits them; it serves no API.
 * SIGINT/SIGTERM: no new batches; those in hand finish (or go back to the queue), then it exits.
 */
import { pino } from 'pino'
import { ConfigError, loadConfig, toServicesConfig, type Config } from './config.js'
import { openIndexWorker, WorkerNeedsDatabaseError, type IndexWorkerProcess } from './services/open-index-worker.js'
import { buildWorkerApp, type WorkerApp } from './worker-app.js'

const SHUTDOWN_GRACE_MS = 30_000

function readConfig (): Config {
  try {
    return loadConfig()
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    pino({ base: undefined }).fatal({ problems: err.problems }, err.message)
    process.exit(78) // EX_CONFIG
  }
}

async function main (): Promise<void> {
  const config = readConfig()
  const logger = pino({ level: config.logLevel }).child({ role: 'worker' })
  if (config.database === undefined) {
    logger.fatal(new WorkerNeedsDatabaseError().message)
    process.exit(78)
  }

  let worker: IndexWorkerProcess | undefined
  let http: WorkerApp | undefined
  let closing = false
  if (config.workerPort !== undefined) {
    http = await buildWorkerApp(config, logger, {
      running: () => worker !== undefined && !closing,
      health: async () => worker === undefined ? { ok: false, reason: 'starting' } : await worker.health(),
      inFlight: () => worker?.worker.inFlight ?? 0
    })
    // listening before the model loads: /health answers at once, /ready once the worker runs
    await http.app.listen({ port: config.workerPort, host: config.host })
  }

  const shutdown = (signal: string): void => {
    if (closing) {
      logger.warn({ signal }, 'second signal: exiting without waiting')
      process.exit(130)
    }
    closing = true
    logger.info({ signal }, 'shutting down: finishing the batches in hand')
    const timer = setTimeout(() => {
      logger.error({ graceMs: SHUTDOWN_GRACE_MS }, 'shutdown took too long: exiting')
      process.exit(1)
    }, SHUTDOWN_GRACE_MS)
    timer.unref()
    Promise.all([worker?.close(), http?.app.close()]).then(() => {
      logger.info('bye')
      process.exit(0)
    }, (err: unknown) => {
      logger.error({ err }, 'error while shutting down')
      process.exit(1)
    })
  }
  process.on('SIGINT', () => { shutdown('SIGINT') })
  process.on('SIGTERM', () => { shutdown('SIGTERM') })
  process.on('unhandledRejection', (err) => { logger.error({ err }, 'unhandled rejection') })

  worker = await openIndexWorker(toServicesConfig(config), logger, http?.onBatch)
  if (closing) { await worker.close(); return }
  logger.info({ provider: worker.provider, importDir: config.importDir, batchSize: config.indexBatchSize, port: config.workerPort ?? null }, 'index worker is up: taking batches from the queue')
}

main().catch((err: unknown) => {
  pino({ base: undefined }).fatal({ err }, 'the index worker failed to start')
  process.exit(1)
})
