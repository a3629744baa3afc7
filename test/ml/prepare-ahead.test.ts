import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, test } from 'node:test'
import { prepareAhead } from '../../src/ml/prepare-ahead.js'

/** Counts items prepared but not yet consumed, as the background process's decoded pixels are. */
function tracker () {
  let alive = 0
  let most = 0
  const events: string[] = []
  return {
    prepare: async (i: number): Promise<number> => {
      events.push(`prepare ${i}`)
      await sleep(i % 3) // finishing out of order
      alive++
      most = Math.max(most, alive)
      return i * 10
    },
    consume: async (prepared: number[]): Promise<string[]> => {
      events.push(`consume ${prepared.join(',')}`)
      await sleep(2)
      alive -= prepared.length
      return prepared.map((p) => `r${p}`)
    },
    get most () { return most },
    events
  }
}

describe('prepareAhead (the background ingest process\'s decode → vision pipeline)', () => {
  test('gives every result in the items\' order, window by window', async () => {
    const t = tracker()
    const items = Array.from({ length: 11 }, (_, i) => i)
    assert.deepEqual(await prepareAhead(items, 3, t.prepare, t.consume), items.map((i) => `r${i * 10}`))
    assert.deepEqual(t.events.filter((e) => e.startsWith('consume')), ['consume 0,10,20', 'consume 30,40,50', 'consume 60,70,80', 'consume 90,100'])
    assert.deepEqual(await prepareAhead([], 3, t.prepare, t.consume), [])
  })

  test('holds at most two windows of prepared items, however many items a batch has', async () => {
    const t = tracker()
    await prepareAhead(Array.from({ length: 32 }, (_, i) => i), 2, t.prepare, t.consume)
    assert.ok(t.most <= 4, `${t.most} items were prepared and not yet consumed at once`)
  })

  test('the next window prepares while the one before it is consumed', async () => {
    const t = tracker()
    await prepareAhead([0, 1, 2, 3, 4, 5], 2, t.prepare, t.consume)
    const firstConsume = t.events.indexOf('consume 0,10')
    assert.ok(t.events.indexOf('prepare 2') < firstConsume && t.events.indexOf('prepare 3') < firstConsume, t.events.join('; '))
    assert.ok(t.events.indexOf('prepare 4') > firstConsume, t.events.join('; '))
  })

  test('a consume that fails rejects the call, and the window preparing meanwhile leaves no unhandled rejection', async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (err: unknown): void => { unhandled.push(err) }
    process.on('unhandledRejection', onUnhandled)
    try {
      const prepare = async (i: number): Promise<number> => { if (i >= 2) throw new Error(`prepare ${i} failed`); return i }
      await assert.rejects(prepareAhead([0, 1, 2, 3], 2, prepare, async () => { throw new Error('run failed') }), /run failed/)
      await sleep(10)
      assert.deepEqual(unhandled, [])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })
})
