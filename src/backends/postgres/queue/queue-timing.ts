/**
 * How the shared index queue's timers follow from one setting, INDEX_RETRY_AFTER (T): a batch
 * whose worker died is retried by another worker within T.
 *
 * A live worker refreshes its batches' start time every heartbeat (expiry / 3), so only a worker
 * that stopped lets a batch expire: at most `expire` after its last heartbeat. pg-boss's
 * maintenance, which fails expired batches back to the queue, is tried every `maintenance` by every
 * process and runs when the last run is more than that old, so up to two intervals apart; an idle
 * worker asks the queue every `poll`. expire + 2·maintenance + poll ≤ T for every T ≥ 5 s.
 */
export interface QueueTiming {
  /** a batch not heard of for this long is failed and retried (pg-boss expireInSeconds) */
  expireInSeconds: number
  /** how often a worker refreshes the batches it holds */
  heartbeatMs: number
  /** pg-boss maintenanceIntervalSeconds: how often expired batches are put back */
  maintenanceIntervalSeconds: number
  /** how long an idle worker waits before asking the queue again */
  pollMs: number
}

/** pg-boss's own floor for a polling interval */
const MIN_POLL_MS = 500
const MAX_POLL_MS = 2000

/** the shortest INDEX_RETRY_AFTER: pg-boss counts whole seconds, and its maintenance runs at most once a second */
export const MIN_RETRY_AFTER_MS = 5000

/** the timers for INDEX_RETRY_AFTER = `retryAfterMs` */
export function queueTiming (retryAfterMs: number): QueueTiming {
  const seconds = Math.max(MIN_RETRY_AFTER_MS, retryAfterMs) / 1000
  const expireInSeconds = Math.max(2, Math.floor(seconds * 0.5))
  return {
    expireInSeconds,
    heartbeatMs: Math.floor(expireInSeconds * 1000 / 3),
    maintenanceIntervalSeconds: Math.max(1, Math.floor(seconds * 0.15)),
    pollMs: Math.min(MAX_POLL_MS, Math.max(MIN_POLL_MS, Math.floor(seconds * 100)))
  }
}

/** the longest a dead worker's batch can wait before another worker takes it, ms */
export function worstRetryMs (t: QueueTiming): number {
  return t.expireInSeconds * 1000 + 2 * t.maintenanceIntervalSeconds * 1000 + t.pollMs
}
