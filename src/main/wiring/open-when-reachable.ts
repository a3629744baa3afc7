/**
 * Services over a shared database that may be down when the process starts. The server listens at
 * once; until the database answers, /ready is 503 with the reason and the log says why, and the
 * open is retried with backoff (retryWhileUnavailable, src/main/process.ts), so a process manager
 * never sees a crash loop. A database that
 * answers but cannot be used (another model's data, no vector extension, a wrong password) is not
 * retried: `onFatal` gets that error, since waiting would not fix it.
 */
import type { ModelConfig } from '../../ml/types.js'
import { NotReadyError } from '../../core/errors.js'
import type { Logger } from '../../core/types.js'
import { SERVICE_CALLS, type Services } from '../../services/types.js'
import type { ModelService } from '../../services/model-switch.js'
import { retryWhileUnavailable } from '../process.js'

export interface OpenWhenReachableOptions {
  logger: Logger
  /** an error that waiting will not fix; the caller stops the process */
  onFatal: (err: unknown) => void
  /** first retry delay; it doubles up to `maxDelayMs` (defaults 1 s and 30 s) */
  firstDelayMs?: number
  maxDelayMs?: number
}

/** The calls that go to the opened services, or answer 503 before. */
export const DELEGATED_CALLS = SERVICE_CALLS
const delegated = new Set<string | symbol>(DELEGATED_CALLS)

/** What /v1/info shows before the model is loaded. */
const NOT_LOADED: ModelConfig = { name: 'not loaded', modelId: 'not loaded', embeddingDim: 0, maxTextLength: 0, temperature: 1, promptTemplate: '{}', usesTokenTypeIds: false, license: '', source: '' }

/**
 * Starts `open` now and returns Services at once: every call answers 503 (NotReadyError with the
 * reason) until `open` resolves, then goes to the opened services.
 */
export function openWhenReachable (open: () => Promise<Services>, opts: OpenWhenReachableOptions): Services {
  let current: Services | undefined
  let reason = 'connecting to the database'
  const stop = new AbortController()
  const opening = retryWhileUnavailable(open, {
    logger: opts.logger,
    what: 'opening the services',
    signal: stop.signal,
    onWaiting: (why) => { reason = why },
    ...(opts.firstDelayMs === undefined ? {} : { firstDelayMs: opts.firstDelayMs }),
    ...(opts.maxDelayMs === undefined ? {} : { maxDelayMs: opts.maxDelayMs })
  }).then(async (opened) => {
    if (opened === undefined) return
    if (stop.signal.aborted) { await opened.close(); return }
    current = opened
  }, (err: unknown) => { if (!stop.signal.aborted) opts.onFatal(err) })

  const notReady = async (): Promise<never> => { throw new NotReadyError(`not ready: ${reason}`) }
  const modelsNotReady: ModelService = { status: notReady, start: notReady, swap: notReady, dropStandby: notReady, idle: async () => {}, close: async () => {} }
  const local: Partial<Services> = {
    ready: () => current?.ready() ?? false,
    health: async () => (current !== undefined ? await current.health() : { ok: false, reason }),
    close: async () => {
      stop.abort()
      await opening
      await current?.close()
    }
  }
  return new Proxy({} as Services, {
    // only the Services members: anything else (Fastify's decorate probes `getter`, say) is undefined, as on a plain object
    get (_target, prop) {
      if (prop === 'model') return current?.model ?? NOT_LOADED
      if (prop === 'ready' || prop === 'health' || prop === 'close') return local[prop]
      // optional: absent until there are services to wait on
      if (prop === 'waitForJob') return current?.waitForJob?.bind(current)
      if (prop === 'standbyModel') return current?.standbyModel
      // the model switch's calls answer 503 until the database does, like the others
      if (prop === 'models') return current === undefined ? modelsNotReady : current.models
      if (!delegated.has(prop)) return undefined
      if (current === undefined) return notReady
      const call = current[prop as typeof DELEGATED_CALLS[number]] as (...args: unknown[]) => unknown
      return call.bind(current)
    }
  })
}
