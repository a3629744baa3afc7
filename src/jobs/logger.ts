import type { LogFn } from 'pino'

/** The slice of a pino logger the core uses; pino's Logger and Fastify's `app.log` both fit. */
export interface CoreLogger {
  info: LogFn
  warn: LogFn
  error: LogFn
  debug: LogFn
  child: (bindings: Record<string, unknown>) => CoreLogger
}
