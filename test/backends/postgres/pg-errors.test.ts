/** The PostgreSQL adapter reports an unreachable database as BackendUnavailableError, and nothing else as such. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { BackendUnavailableError, ConflictError } from '../../../src/core/errors.js'
import { isUnreachable, toBackendError } from '../../../src/backends/postgres/pg-errors.js'

const coded = (message: string, code: string): Error => Object.assign(new Error(message), { code })

describe('PostgreSQL errors in backend terms', () => {
  it('tells unreachable servers from databases that answer but cannot be used', () => {
    const refused = new Error('cannot connect to PostgreSQL', { cause: coded('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED') })
    assert.equal(isUnreachable(refused), true)
    assert.equal(isUnreachable(coded('the database system is starting up', '57P03')), true)
    assert.equal(isUnreachable(coded('sorry, too many clients already', '53300')), true)
    assert.equal(isUnreachable(coded('connection failure', '08006')), true)
    assert.equal(isUnreachable(coded('database "nodb" does not exist', '3D000')), false)
    assert.equal(isUnreachable(coded('password authentication failed', '28P01')), false)
    assert.equal(isUnreachable(new ConflictError('built with model other')), false)
  })

  it('maps the unreachable ones to BackendUnavailableError (503) and passes the rest through', () => {
    const down = toBackendError(coded('terminating connection due to administrator command', '57P01'))
    assert.ok(down instanceof BackendUnavailableError)
    assert.equal((down as { statusCode?: number }).statusCode, 503)
    assert.match((down as Error).message, /PostgreSQL is unavailable: the server is shutting down \(administrator command\) \[57P01\]/)
    const wrongPassword = coded('password authentication failed', '28P01')
    assert.equal(toBackendError(wrongPassword), wrongPassword)
  })

  it('names the cause in words, never the address node puts in its message; keeps the original as the cause', () => {
    const original = coded('connect ECONNREFUSED 10.1.2.3:6543', 'ECONNREFUSED')
    const mapped = toBackendError(new Error('cannot connect to PostgreSQL', { cause: original })) as Error
    assert.ok(mapped instanceof BackendUnavailableError)
    assert.match(mapped.message, /the connection was refused .*\[ECONNREFUSED\]/)
    assert.doesNotMatch(mapped.message, /10\.1\.2\.3|6543/)
    assert.equal((mapped.cause as Error).message, 'cannot connect to PostgreSQL')
    assert.doesNotMatch((toBackendError(coded('getaddrinfo ENOTFOUND db.internal', 'ENOTFOUND')) as Error).message, /db\.internal/)
  })

  it('a timeout is unavailability too: a statement or lock timeout, node-postgres\'s own query and connect timers', () => {
    for (const err of [coded('canceling statement due to statement timeout', '57014'), coded('canceling statement due to lock timeout', '55P03'),
      new Error('Query read timeout'), new Error('Connection terminated due to connection timeout'), new Error('Connection terminated unexpectedly')]) {
      assert.ok(toBackendError(err) instanceof BackendUnavailableError, err.message)
    }
  })
})
