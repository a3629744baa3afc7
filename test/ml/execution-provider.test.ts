import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import { loadEncoder } from '../../src/ml/index.js'
import { ortSource } from '../../src/ml/ort.js'
import { providerList } from '../../src/ml/ort-session.js'
import { TIMEOUT } from '../helpers/timeouts.js'

const MODEL_DIR = 'test/fixtures/align-tiny'
// With ORT_NODE_PREFIX set (a GPU host after scripts/install-cuda-provider.sh) CUDA may well work: these
// tests are about a host without it, which is every host that has not installed the provider.
const noCudaHere = process.env.ORT_NODE_PREFIX === undefined ? undefined : 'ORT_NODE_PREFIX is set: this host may have a working CUDA provider'

describe('EXECUTION_PROVIDER', { timeout: TIMEOUT.model }, () => {
  test('cuda without a CUDA provider fails at load, naming what the host needs and the explicit fallback', { skip: noCudaHere }, async () => {
    await assert.rejects(loadEncoder({ modelDir: MODEL_DIR, executionProvider: 'cuda' }), (err: Error) => {
      assert.match(err.message, /^EXECUTION_PROVIDER=cuda: the cuda execution provider cannot be used/)
      assert.match(err.message, /CUDA 13 and cuDNN 9/)
      assert.match(err.message, /install-cuda-provider\.sh/)
      assert.match(err.message, /EXECUTION_PROVIDER=cuda,cpu falls back/)
      return true
    })
  })

  test('cuda,cpu runs on the CPU and logs why, once, as a warning', { skip: noCudaHere }, async () => {
    const warnings: Array<{ o: Record<string, unknown>, m?: string }> = []
    const logger = { info: () => {}, warn: (o: object, m?: string) => { warnings.push({ o: o as Record<string, unknown>, m }) } }
    const enc = await loadEncoder({ modelDir: MODEL_DIR, executionProvider: 'cuda,cpu', logger })
    try {
      assert.equal(enc.provider, 'cpu')
      assert.equal((await enc.encodeTexts(['a cat']))[0]!.length, enc.config.embeddingDim)
      assert.equal(warnings.length, 1)
      assert.equal(warnings[0]!.o.requested, 'cuda,cpu')
      assert.equal(warnings[0]!.o.provider, 'cpu')
      assert.match(String(warnings[0]!.o.reason), /cuda execution provider cannot be used/)
    } finally {
      await enc.close()
    }
  })

  test('the setting is tried in its order', () => {
    assert.deepEqual(providerList('cuda,cpu'), ['cuda', 'cpu'])
    assert.deepEqual(providerList('cuda'), ['cuda'])
    assert.deepEqual(providerList('cpu'), ['cpu'])
  })

  test('ORT_NODE_PREFIX without onnxruntime-node in it is refused by name, not resolved to the project\'s copy', async () => {
    const empty = await mkdtemp(path.join(tmpdir(), 'ort-prefix-'))
    try {
      assert.throws(() => ortSource({ ORT_NODE_PREFIX: empty }), new RegExp(`ORT_NODE_PREFIX=${empty}: no onnxruntime-node in .*install-cuda-provider\\.sh`))
      // a prefix inside the project would otherwise find the project's own node_modules by walking up
      assert.throws(() => ortSource({ ORT_NODE_PREFIX: 'test' }), /no onnxruntime-node in/)
    } finally {
      await rm(empty, { recursive: true, force: true })
    }
    assert.equal(ortSource({}).entry, 'onnxruntime-node')
  })
})
