/** Services over a shared database that is down at start: 503 with the reason, retried until it answers; a fatal error is not retried. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DELEGATED_CALLS, openWhenReachable } from '../../../src/main/wiring/open-when-reachable.js'
import { BackendUnavailableError, ConflictError } from '../../../src/core/errors.js'
import { createFakeServices } from '../../helpers/fake-services.js'

const silent = { info () {}, warn () {}, error () {}, debug () {}, child () { return silent } }

/** what the PostgreSQL adapter throws for a refused connection (src/backends/postgres/pg-errors.ts) */
function refused (): Error {
  return new BackendUnavailableError('PostgreSQL is unavailable: connect ECONNREFUSED 127.0.0.1:5432')
}

async function until (check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

describe('openWhenReachable', () => {
  it('answers 503 with the reason while the database is down, then serves once it answers', async () => {
    const fake = createFakeServices()
    let attempts = 0
    const services = openWhenReachable(async () => {
      attempts++
      if (attempts < 3) throw refused()
      return fake
    }, { logger: silent, onFatal: (err) => { throw err }, firstDelayMs: 10 })
    assert.equal(services.ready(), false)
    assert.deepEqual(await services.health(), { ok: false, reason: 'connecting to the database' })
    await until(async () => /ECONNREFUSED/.test((await services.health()).reason ?? ''))
    assert.equal((await services.health()).ok, false)
    await assert.rejects(services.getImage('x'), (err: Error & { code?: string }) => err.code === 'NOT_READY' && /ECONNREFUSED/.test(err.message))
    assert.equal(services.model.modelId, 'not loaded')
    await until(() => services.ready())
    assert.equal(attempts, 3)
    assert.equal(services.model.modelId, fake.model.modelId)
    assert.deepEqual(await services.health(), await fake.health())
    assert.equal(await services.getImage('missing'), undefined)
    await services.close()
    assert.equal(fake.closed, true, 'closing the wrapper closes the opened services')
  })

  it('passes every Services call through, and nothing else', async () => {
    const fake = createFakeServices()
    const calls = Object.keys(fake).filter((k) => typeof (fake as unknown as Record<string, unknown>)[k] === 'function' && !['ready', 'health', 'close', 'waitForJob'].includes(k) && !k.startsWith('set'))
    assert.deepEqual([...DELEGATED_CALLS].sort(), calls.sort())
    const services = openWhenReachable(async () => fake, { logger: silent, onFatal: (err) => { throw err } })
    assert.equal((services as unknown as Record<string, unknown>).getter, undefined)
    await services.close()
  })

  it('hands a fatal error to onFatal once and stops retrying', async () => {
    let attempts = 0
    const fatal: unknown[] = []
    const services = openWhenReachable(async () => {
      attempts++
      throw new ConflictError('this database was built with model other')
    }, { logger: silent, onFatal: (err) => { fatal.push(err) }, firstDelayMs: 1 })
    await until(() => fatal.length > 0)
    await new Promise((resolve) => setTimeout(resolve, 50))
    assert.equal(attempts, 1)
    assert.ok(fatal[0] instanceof ConflictError)
    assert.equal(services.ready(), false)
    await services.close()
  })

  it('a close while waiting to retry stops the retries', async () => {
    let attempts = 0
    const services = openWhenReachable(async () => { attempts++; throw refused() }, { logger: silent, onFatal: () => {}, firstDelayMs: 30 })
    await until(() => attempts === 1)
    await services.close()
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.equal(attempts, 1)
  })
})
