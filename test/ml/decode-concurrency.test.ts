import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decodeConcurrency } from '../../src/ml/decode-limit.js'

test('images decoded at once leave two libuv threads free for text searches, and never drop below one', () => {
  assert.equal(decodeConcurrency({ UV_THREADPOOL_SIZE: '6' }), 2)
  assert.equal(decodeConcurrency({ UV_THREADPOOL_SIZE: '10' }), 4)
  assert.equal(decodeConcurrency({}), 1) // libuv's default pool of 4
  assert.equal(decodeConcurrency({ UV_THREADPOOL_SIZE: '2' }), 1)
  assert.equal(decodeConcurrency({ UV_THREADPOOL_SIZE: 'lots' }), 1)
})
