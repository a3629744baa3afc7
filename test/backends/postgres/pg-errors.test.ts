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
    assert.match((down as Error).message, /PostgreSQL is unavailable: terminating connection/)
    const refused = toBackendError(new Error('cannot connect to PostgreSQL at app@db:5432/x: connect ECONNREFUSED', { cause: coded('connect ECONNREFUSED', 'ECONNREFUSED') }))
    assert.equal((refused as Error).message, 'cannot connect to PostgreSQL at app@db:5432/x: connect ECONNREFUSED')
    const wrongPassword = coded('password authentication failed', '28P01')
    assert.equal(toBackendError(wrongPassword), wrongPassword)
  })
})
