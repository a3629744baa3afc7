/**
 * `npm start`: the API process. Configuration, logger, the DATA_DIR lock, the services
 * (src/main/wiring), the app (src/http/app.ts), listen, and a graceful shutdown that closes the
 * app, which closes the services (checkpointing the index).
 */
import { pino } from 'pino'
import { buildApp } from '../http/app.js'
import { ensureDirs, type Config } from './config/config.js'
import { toServicesConfig } from './wiring/services-config.js'
import { DataDirBusyError, lockDataDir, type DataDirLock } from './data-dir-lock.js'
import { handleShutdown, readConfigOrExit } from './process.js'
import { openServerServices } from './wiring/open-services.js'

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

  // a shared database may fail for good while the services open in the background: until the shutdown handler exists, keep the error
  let early: { err: unknown } | undefined
  let stopOnFatal = (err: unknown): void => { early = { err } }
  const services = await openServerServices(toServicesConfig(config), logger, (err) => { stopOnFatal(err) })
  const app = await buildApp({ config, services, logger })

  const shutdown = handleShutdown({
    logger,
    stopping: 'finishing requests and checkpointing the index',
    close: async () => {
      await app.close()
      lock.release()
    }
  })
  stopOnFatal = (err) => {
    logger.fatal({ err }, `align-search cannot serve: ${err instanceof Error ? err.message : String(err)}`)
    process.exitCode = 1
    shutdown('fatal')
  }
  if (early !== undefined) stopOnFatal(early.err)

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
