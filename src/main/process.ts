/**
 * What every entry point (server, worker) does the same way: read the configuration or exit,
 * stop cleanly on a signal within a grace time, and wait for a backend that does not answer yet.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { pino } from 'pino'
import { BackendUnavailableError } from '../core/errors.js'
import type { Logger } from '../core/types.js'
import { ConfigError, loadConfig, type Config } from './config/config.js'
import { onStopSignals, type StopSignal } from './stop-signals.js'

/** A close that takes longer than this exits at once. */
export const SHUTDOWN_GRACE_MS = 30_000

/** The configuration from the environment; a bad setting logs every problem and exits 78 (EX_CONFIG). */
export function readConfigOrExit (): Config {
  try {
    return loadConfig()
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    pino({ base: undefined }).fatal({ problems: err.problems }, err.message)
    process.exit(78)
  }
}

export interface ShutdownOptions {
  logger: Logger
  /** what the log says the process is doing while it stops */
  stopping: string
  /** closes everything; the process exits once it resolves */
  close: () => Promise<void>
  graceMs?: number
}

export type ShutdownReason = StopSignal | 'fatal'

/**
 * Stops the process on SIGINT/SIGTERM (or when the returned function is called): `close`, then
 * exit with process.exitCode. A second signal (not npm's echo of the first: stop-signals.ts), or a
 * close that outlasts the grace time, exits at once.
 */
export function handleShutdown (opts: ShutdownOptions): (reason: ShutdownReason) => void {
  const { logger } = opts
  const graceMs = opts.graceMs ?? SHUTDOWN_GRACE_MS
  let closing = false
  const shutdown = (reason: ShutdownReason, again = false): void => {
    if (again) {
      logger.warn({ signal: reason }, 'second signal: exiting without waiting')
      process.exit(130)
    }
    if (closing) return // already on its way: a signal after a fatal error, or the other way round
    closing = true
    logger.info({ signal: reason }, `shutting down: ${opts.stopping}`)
    const timer = setTimeout(() => {
      logger.error({ graceMs }, 'shutdown took too long: exiting')
      process.exit(1)
    }, graceMs)
    timer.unref()
    opts.close().then(() => {
      logger.info('bye')
      process.exit()
    }, (err: unknown) => {
      logger.error({ err }, 'error while shutting down')
      process.exit(1)
    })
  }
  onStopSignals(shutdown)
  process.on('unhandledRejection', (err) => { logger.error({ err }, 'unhandled rejection') })
  return (reason) => { shutdown(reason) }
}

export interface RetryOptions {
  logger: Logger
  /** what is being opened, for the log */
  what: string
  /** told the reason each time an attempt finds the backend unavailable */
  onWaiting?: (reason: string) => void
  /** stops the waiting: the call then resolves undefined */
  signal?: AbortSignal
  /** first wait between attempts; it doubles up to `maxDelayMs` (defaults 1 s and 30 s) */
  firstDelayMs?: number
  maxDelayMs?: number
}

/**
 * Calls `open` until it succeeds, waiting with backoff while it fails with BackendUnavailableError
 * (one warning line per attempt), so a process manager never sees a crash loop while a database
 * starts. Any other error is thrown at once: waiting would not fix it.
 */
export async function retryWhileUnavailable<T> (open: () => Promise<T>, opts: RetryOptions): Promise<T | undefined> {
  const maxDelay = opts.maxDelayMs ?? 30_000
  for (let delay = opts.firstDelayMs ?? 1000; ; delay = Math.min(maxDelay, delay * 2)) {
    if (opts.signal?.aborted === true) return undefined
    try {
      return await open()
    } catch (err) {
      if (!(err instanceof BackendUnavailableError)) throw err
      opts.onWaiting?.(err.message)
      opts.logger.warn({ retryInMs: delay }, `the database is unreachable, retrying (${opts.what}): ${err.message}`)
      try {
        await sleep(delay, undefined, opts.signal === undefined ? {} : { signal: opts.signal })
      } catch {
        return undefined // aborted while waiting
      }
    }
  }
}
