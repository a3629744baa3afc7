/**
 * `npm run worker`: an index worker, the process concerns only (config, logger, optional health
 * port, graceful shutdown). It takes batches from the shared queue in PostgreSQL (DATABASE_URL),
 * encodes them with this machine's EXECUTION_PROVIDER and commits them; it serves no API.
 * A database that does not answer yet is waited for (with backoff; /ready says why), so a process
 * manager never sees a crash loop; one that answers but cannot be used ends the process.
 * SIGINT/SIGTERM: no new batches; those in hand finish (or go back to the queue), then it exits.
 */
import { pino } from 'pino'
import { buildWorkerApp, type WorkerApp } from '../http/worker-app.js'
import { toServicesConfig } from './wiring/services-config.js'
import { handleShutdown, readConfigOrExit, retryWhileUnavailable } from './process.js'
import { openIndexWorker, WorkerNeedsDatabaseError, type IndexWorkerProcess } from './wiring/open-index-worker.js'

async function main (): Promise<void> {
  const config = readConfigOrExit()
  const logger = pino({ level: config.logLevel }).child({ role: 'worker' })
  if (config.database === undefined) {
    logger.fatal(new WorkerNeedsDatabaseError().message)
    process.exit(78)
  }

  // the health port and the shutdown read it before it opens
  const opened: { worker?: IndexWorkerProcess | undefined } = {}
  let http: WorkerApp | undefined
  let waitingFor: string | undefined
  const stop = new AbortController()
  if (config.workerPort !== undefined) {
    http = await buildWorkerApp(config, logger, {
      running: () => opened.worker !== undefined && !stop.signal.aborted,
      health: async () => opened.worker === undefined ? { ok: false, reason: waitingFor ?? 'starting' } : await opened.worker.health(),
      inFlight: () => opened.worker?.worker.inFlight ?? 0
    })
    // listening before the model loads: /health answers at once, /ready once the worker runs
    // WORKER_HOST, not HOST: the worker's port has no auth, so it stays on loopback unless asked
    await http.app.listen({ port: config.workerPort, host: config.workerHost })
  }

  handleShutdown({
    logger,
    stopping: 'finishing the batches in hand',
    close: async () => {
      stop.abort()
      await Promise.all([opened.worker?.close(), http?.app.close()])
    }
  })

  const worker = opened.worker = await retryWhileUnavailable(async () => await openIndexWorker(toServicesConfig(config), logger, http?.onBatch), {
    logger,
    what: 'index worker',
    signal: stop.signal,
    onWaiting: (reason) => { waitingFor = reason }
  })
  if (worker === undefined) return
  if (stop.signal.aborted) { await worker.close(); return }
  logger.info({ provider: worker.provider, importDir: config.importDir, batchSize: config.indexBatchSize, port: config.workerPort ?? null }, 'index worker is up: taking batches from the queue')
}

main().catch((err: unknown) => {
  pino({ base: undefined }).fatal({ err }, 'the index worker failed to start')
  process.exit(1)
})
