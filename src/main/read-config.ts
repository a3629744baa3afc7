/** The configuration for a process entry point (server, worker): a bad setting logs every problem and exits 78. */
import { pino } from 'pino'
import { ConfigError, loadConfig, type Config } from './config/config.js'

export function readConfigOrExit (): Config {
  try {
    return loadConfig()
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    pino({ base: undefined }).fatal({ problems: err.problems }, err.message)
    process.exit(78) // EX_CONFIG
  }
}
