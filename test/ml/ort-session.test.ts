import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ARENA_MAX_MODEL_BYTES, sessionOptions, visionBatchFor } from '../../src/ml/ort-session.js'

describe('session settings from the model\'s size', () => {
  test('vision runs hold 8 small images (align-mini 48 px, align-tiny 64 px) but one at ALIGN\'s 289 px', () => {
    assert.equal(visionBatchFor(48, 48, 8), 8)
    assert.equal(visionBatchFor(64, 64, 8), 8)
    assert.equal(visionBatchFor(289, 289, 8), 1)
    assert.equal(visionBatchFor(128, 128, 8), 4)
    assert.equal(visionBatchFor(48, 48, 2), 2) // a configured maximum still caps it
  })

  test('the CPU arena stays for small models and is off for large ones', () => {
    assert.equal(sessionOptions('cpu', 1, 14 * 2 ** 20).enableCpuMemArena, true)
    assert.equal(sessionOptions('cpu', 1, ARENA_MAX_MODEL_BYTES).enableCpuMemArena, false)
    assert.equal(sessionOptions('cpu', 1, 236 * 2 ** 20).enableCpuMemArena, false)
  })
})
