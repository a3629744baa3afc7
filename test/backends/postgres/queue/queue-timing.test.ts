import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MIN_RETRY_AFTER_MS, queueTiming, worstRetryMs } from '../../../../src/backends/postgres/queue/queue-timing.js'

describe('queue timing', () => {
  for (const retryAfterMs of [MIN_RETRY_AFTER_MS, 6000, 10_000, 30_000, 60_000, 3_600_000]) {
    it(`INDEX_RETRY_AFTER=${retryAfterMs} ms: a dead worker's batch is back in the queue within it, and a live one beats three times per expiry`, () => {
      const t = queueTiming(retryAfterMs)
      assert.ok(worstRetryMs(t) <= retryAfterMs, `${worstRetryMs(t)} ms > ${retryAfterMs} ms`)
      assert.ok(t.heartbeatMs * 3 <= t.expireInSeconds * 1000)
      assert.ok(Number.isInteger(t.expireInSeconds) && Number.isInteger(t.maintenanceIntervalSeconds), 'pg-boss takes whole seconds')
      assert.ok(t.pollMs >= 500, 'pg-boss polls at most twice a second')
    })
  }
})
