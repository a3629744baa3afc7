import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import { loadModelFolder, loadReference, packTokens, TextTokenizer } from '../../src/ml/index.js'
import type { ReferenceData } from '../../src/ml/index.js'
import { TIMEOUT } from '../helpers/timeouts.js'

const MODEL_DIR = 'models/align-mini'

describe('tokenizer', { timeout: TIMEOUT.unit }, () => {
  let tok: TextTokenizer
  let ref: ReferenceData
  let maxLength: number
  before(async () => {
    const folder = await loadModelFolder(MODEL_DIR)
    maxLength = folder.config.maxTextLength
    tok = TextTokenizer.fromFile(folder.tokenizerPath, maxLength, folder.config.usesTokenTypeIds)
    ref = await loadReference(MODEL_DIR)
  })

  test('ids equal reference.json input_ids exactly, for every reference text', async () => {
    const got = await tok.encode(ref.texts.map((t) => t.text))
    ref.texts.forEach((t, i) => assert.deepEqual(got[i]!.ids, t.inputIds, `ids for ${JSON.stringify(t.text)}`))
  })

  test('long texts are truncated to max_text_length, special tokens included', async () => {
    const [long] = await tok.encode([Array.from({ length: 200 }, () => 'cat').join(' ')])
    assert.equal(long!.ids.length, maxLength)
    const [short] = await tok.encode(['cat'])
    assert.equal(long!.ids[0], short!.ids[0]) // [CLS] kept
    assert.equal(long!.ids.at(-1), short!.ids.at(-1)) // [SEP] kept
  })

  test('a batch is padded to its longest text, as int64 with a 0/1 attention mask', async () => {
    const texts = ['cat', 'waving hand: medium skin tone']
    const b = await tok.encodeBatch(texts)
    const single = await tok.encode(texts)
    const longest = Math.max(...single.map((s) => s.ids.length))
    assert.equal(b.batch, 2)
    assert.equal(b.length, longest)
    assert.ok(b.inputIds instanceof BigInt64Array && b.attentionMask instanceof BigInt64Array)
    assert.equal(b.tokenTypeIds, undefined) // align-mini: uses_token_type_ids false
    const row0 = [...b.inputIds.subarray(0, longest)].map(Number)
    assert.deepEqual(row0.slice(0, single[0]!.ids.length), single[0]!.ids)
    assert.ok(row0.slice(single[0]!.ids.length).every((x) => x === tok.padId))
    assert.deepEqual([...b.attentionMask.subarray(0, longest)].map(Number), single[0]!.ids.map(() => 1).concat(Array(longest - single[0]!.ids.length).fill(0)))
    assert.ok([...b.attentionMask.subarray(longest)].every((x) => x === 1n))
  })

  test('token_type_ids are produced when the model uses them', () => {
    const b = packTokens([{ ids: [2, 5, 3], typeIds: [0, 0, 0] }, { ids: [2, 3], typeIds: [0, 1] }], true)
    assert.deepEqual([...b.tokenTypeIds!].map(Number), [0, 0, 0, 0, 1, 0])
  })
})
