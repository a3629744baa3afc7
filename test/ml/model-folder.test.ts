import assert from 'node:assert/strict'
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import { formatPrompt, loadModelFolder, loadReference, ModelFolderError } from '../../src/ml/index.js'
import { TIMEOUT } from '../helpers/timeouts.js'

const MODEL_DIR = 'models/align-mini'
const scratch: string[] = []
after(async () => { await Promise.all(scratch.map(async (d) => await rm(d, { recursive: true, force: true }))) })

/** A copy of the default model folder with one file changed (or removed, when content is undefined). */
async function brokenCopy (file: string, edit: ((json: Record<string, unknown>) => void) | undefined): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'align-folder-'))
  scratch.push(dir)
  await cp(MODEL_DIR, dir, { recursive: true })
  if (edit === undefined) {
    await rm(path.join(dir, file))
  } else {
    const json = JSON.parse(await readFile(path.join(dir, file), 'utf8')) as Record<string, unknown>
    edit(json)
    await writeFile(path.join(dir, file), JSON.stringify(json))
  }
  return dir
}

describe('model folder', { timeout: TIMEOUT.unit }, () => {
  test('the default model folder loads, with configs in camelCase', async () => {
    const folder = await loadModelFolder(MODEL_DIR)
    assert.equal(folder.config.name, 'align-mini')
    assert.equal(typeof folder.config.modelId, 'string')
    assert.ok(folder.config.embeddingDim > 0)
    assert.ok(folder.config.maxTextLength > 2)
    assert.equal(folder.config.usesTokenTypeIds, false)
    assert.equal(folder.preprocessor.kernel, 'linear') // resample 2 = bilinear
    assert.equal(folder.preprocessor.rescaleOffset, true)
    assert.equal(folder.preprocessor.inputHeight, folder.preprocessor.size.height)
    assert.ok(path.isAbsolute(folder.visionPath))
    assert.equal(formatPrompt(folder.config, 'cat'), folder.config.promptTemplate.replace('{}', 'cat'))
  })

  test('reference.json parses: texts with ids, images with PNGs and raw embeddings', async () => {
    const ref = await loadReference(MODEL_DIR)
    assert.ok(ref.tolerance > 0)
    assert.ok(ref.texts.length > 0 && ref.images.length > 0)
    const folder = await loadModelFolder(MODEL_DIR)
    for (const t of ref.texts) assert.equal(t.textEmbeds.length, folder.config.embeddingDim)
    for (const im of ref.images) {
      assert.equal(im.imageEmbeds.length, folder.config.embeddingDim)
      assert.deepEqual([...im.png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join(''), 'PNG')
    }
  })

  test('a missing file is named', async () => {
    const dir = await brokenCopy('text.onnx', undefined)
    await assert.rejects(loadModelFolder(dir), (err: Error) => {
      assert.ok(err instanceof ModelFolderError)
      assert.match(err.message, /text\.onnx/)
      assert.match(err.message, /missing/)
      return true
    })
  })

  test('a missing config field is named with its file', async () => {
    const dir = await brokenCopy('config.json', (j) => { delete j.embedding_dim })
    await assert.rejects(loadModelFolder(dir), /config\.json field "embedding_dim": must be a positive integer \(missing\)/)
  })

  test('a bad preprocessor field is named with its file', async () => {
    const dir = await brokenCopy('preprocessor_config.json', (j) => { j.size = { height: 48 } })
    await assert.rejects(loadModelFolder(dir), /preprocessor_config\.json field "size"/)
    const dir2 = await brokenCopy('preprocessor_config.json', (j) => { j.resample = 5 })
    await assert.rejects(loadModelFolder(dir2), /preprocessor_config\.json field "resample"/)
  })

  test('invalid JSON is reported with the file name', async () => {
    const dir = await brokenCopy('config.json', () => {})
    await writeFile(path.join(dir, 'config.json'), '{ not json')
    await assert.rejects(loadModelFolder(dir), /config\.json: invalid JSON/)
  })
})
