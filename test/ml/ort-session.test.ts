import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import { ARENA_MAX_MODEL_BYTES, modelBytes, sessionOptions, sessionOptionsFor, visionBatchFor } from '../../src/ml/ort-session.js'

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

  test('a tower whose weights are ONNX external data (<file>.data) is sized by both files: the arena is off for it', (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'align-ort-size-'))
    t.after(() => { rmSync(dir, { recursive: true, force: true }) })
    const file = path.join(dir, 'vision.onnx')
    writeFileSync(file, Buffer.alloc(1000))
    assert.equal(modelBytes(file), 1000)
    assert.equal(sessionOptionsFor(file, 'cpu', 1).enableCpuMemArena, true)
    writeFileSync(`${file}.data`, Buffer.alloc(ARENA_MAX_MODEL_BYTES))
    assert.equal(modelBytes(file), 1000 + ARENA_MAX_MODEL_BYTES)
    assert.equal(sessionOptionsFor(file, 'cpu', 1).enableCpuMemArena, false)
  })
})
