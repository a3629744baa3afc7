/**
 * The process: configuration, logger, listen, graceful shutdown. Everything else is in app.ts.
 * SIGINT/SIGTERM close the app, which closes the services (checkpointing the index);
 * a second signal (not npm's echo of the first: stop-signals.ts), or a close that takes longer
 * than SHUTDOWN_GRACE_MS, exits at once.
 */
import { pino } from 'pino'
import { buildApp } from '../http/app.js'
import { ensureDirs, type Config } from './config/config.js'
import { readConfigOrExit } from './read-config.js'
import { onStopSignals, type StopSignal } from './stop-signals.js'
import { DataDirBusyError, lockDataDir, type DataDirLock } from '../backends/sqlite/store/index.js'

const SHUTDOWN_GRACE_MS = 30_000

/** this process's hold on DATA_DIR, or exit with a message naming the process that has it */
function lockOrExit (config: Config): DataDirLock {
  try {
    return lockDataDir(config.dataDir, 'align-search server')
  } catch (err) {
    if (!(err instanceof DataDirBusyError)) throw err
    pino({ base: undefined }).fatal({ dataDir: config.dataDir, holder: err.holder }, `${err.message}. Stop that process first, or give this server another DATA_DIR.`)
    process.exit(75) // EX_TEMPFAIL: it can start once the other one has stopped
  }
}

async function main (): Promise<void> {
  const config = readConfigOrExit()
  const logger = pino({ level: config.logLevel, redact: ['req.headers.authorization'] })
  ensureDirs(config)
  const lock = lockOrExit(config)

  // the services may fail for good while opening in the background (a shared database); until shutdown exists, keep the error
  let early: { err: unknown } | undefined
  let stopOnFatal = (err: unknown): void => { early = { err } }
  const app = await buildApp({ config, logger, onFatal: (err) => { stopOnFatal(err) } })

  let closing = false
  const shutdown = (signal: StopSignal | 'fatal', again = false): void => {
    if (again) {
      logger.warn({ signal }, 'second signal: exiting without waiting')
      process.exit(130)
    }
    if (closing) return // already on its way: a signal after a fatal error, or the other way round
    closing = true
    logger.info({ signal }, 'shutting down: finishing requests and checkpointing the index')
    const timer = setTimeout(() => {
      logger.error({ graceMs: SHUTDOWN_GRACE_MS }, 'shutdown took too long: exiting')
      process.exit(1)
    }, SHUTDOWN_GRACE_MS)
    timer.unref()
    app.close().then(() => {
      lock.release()
      logger.info('bye')
      process.exit() // process.exitCode: 1 after a fatal error
    }, (err: unknown) => {
      logger.error({ err }, 'error while shutting down')
      process.exit(1)
    })
  }
  stopOnFatal = (err) => {
    logger.fatal({ err }, `align-search cannot serve: ${err instanceof Error ? err.message : String(err)}`)
    process.exitCode = 1
    shutdown('fatal')
  }
  if (early !== undefined) stopOnFatal(early.err)
  onStopSignals(shutdown)
  process.on('unhandledRejection', (err) => { logger.error({ err }, 'unhandled rejection') })

  await app.listen({ port: config.port, host: config.host })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : config.port
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host
  logger.info({ port, docs: `http://${host}:${port}/docs` }, `align-search is up: open http://${host}:${port}/ in a browser`)
}

main().catch((err: unknown) => {
  pino({ base: undefined }).fatal({ err }, 'align-search failed to start')
  process.exit(1)
})
