import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TIMEOUT } from '../helpers/timeouts.js'
import { hitLabel, hitTitle } from '../../web/src/results.js'

test('a result is called by its label, else by the file it came from, else by its id', { timeout: TIMEOUT.unit }, () => {
  const id = '06e20844cb2ea5fb4929a44e'
  assert.equal(hitLabel({ id, metadata: {}, source: 'holiday-2024/sub/beach.jpg' }), 'beach.jpg')
  assert.equal(hitTitle({ id, metadata: {}, source: 'holiday-2024/sub/beach.jpg' }), 'holiday-2024/sub/beach.jpg')
  assert.equal(hitLabel({ id, metadata: {}, source: 'my cat.png' }), 'my cat.png')
  // a label someone gave wins over the file name
  assert.equal(hitLabel({ id, metadata: { label: 'grinning cat' }, source: 'cats/1.png' }), 'grinning cat')
  assert.equal(hitTitle({ id, metadata: { label: 'grinning cat' }, source: 'cats/1.png' }), 'cats/1.png')
  // images stored before sources were recorded
  assert.equal(hitLabel({ id, metadata: { filename: 'old.png' }, source: null }), 'old.png')
  assert.equal(hitLabel({ id, metadata: {}, source: null }), id)
  assert.equal(hitTitle({ id, metadata: {}, source: null }), id)
  assert.equal(hitLabel({ id, source: '' }), id)
})
