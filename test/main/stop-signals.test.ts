import assert from 'node:assert/strict'
import { test } from 'node:test'
import { onStopSignals, type StopSignal } from '../../src/main/stop-signals.js'
import { TIMEOUT } from '../helpers/timeouts.js'

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

test('a signal repeated at once (npm forwarding the terminal\'s Ctrl-C) is one stop; a later one is "again"', { timeout: TIMEOUT.unit }, async () => {
  const seen: Array<[StopSignal, boolean]> = []
  const echoMs = 200
  const stop = onStopSignals((signal, again) => { seen.push([signal, again]) }, echoMs)
  try {
    process.kill(process.pid, 'SIGINT')
    process.kill(process.pid, 'SIGINT')
    await sleep(echoMs / 4)
    assert.deepEqual(seen, [['SIGINT', false]])
    await sleep(echoMs * 2)
    process.kill(process.pid, 'SIGTERM')
    await sleep(echoMs / 4)
    assert.deepEqual(seen, [['SIGINT', false], ['SIGTERM', true]])
  } finally {
    stop()
  }
})
