/**
 * One value per limit: the services (which the CLI and the tests call without the HTTP schemas)
 * refuse exactly what the request schemas refuse, the config's defaults are the index's defaults,
 * and the README states the same numbers.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import pino from 'pino'
import { loadConfig } from '../../src/main/config/config.js'
import { BadRequestError } from '../../src/core/errors.js'
import { DEFAULT_HNSW as INDEX_DEFAULT_HNSW } from '../../src/backends/sqlite/hnsw/index.js'
import {
  DEFAULT_HNSW, DEFAULT_INDEX_JOB_NICE, MAX_EMBED_IMAGES, MAX_EMBED_TEXTS, MAX_K, MAX_LABEL_CHARS, MAX_LABELS,
  MAX_QUERY_TERMS, MAX_TEXT_CHARS, MAX_TEXTS_PER_CALL
} from '../../src/core/limits.js'
import { DEFAULT_BACKGROUND_NICE } from '../../src/ml/background-encoder.js'
import { ClassifyBody } from '../../src/http/schemas/classify.js'
import { EmbedBody } from '../../src/http/schemas/embed.js'
import { SearchBody } from '../../src/http/schemas/search.js'
import { TextsBody } from '../../src/http/schemas/texts.js'
import { openServices } from '../../src/main/wiring/open-services.js'
import type { Services } from '../../src/services/types.js'
import { fakeLoadEncoder, makeImage } from '../helpers/fake-encoder.js'
import { TIMEOUT } from '../helpers/timeouts.js'

const dir = mkdtempSync(path.join(tmpdir(), 'limits-'))
let services: Services

describe('one value per limit', { timeout: TIMEOUT.unit }, () => {
  before(async () => {
    services = await openServices({
      modelDir: 'unused',
      dataDir: dir,
      importDir: dir,
      executionProvider: 'cpu',
      encoderWorkers: 1,
      encoderThreads: 1,
      maxImagePixels: 1e8,
      hnsw: { ...DEFAULT_HNSW },
      checkpointEvery: 1000,
      loadEncoder: fakeLoadEncoder()
    }, pino({ level: 'silent' }))
  })
  after(async () => {
    await services?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('the request schemas take their bounds from src/core/limits.ts', () => {
    assert.equal(SearchBody.properties.query.maxItems, MAX_QUERY_TERMS)
    assert.equal(SearchBody.properties.k.maximum, MAX_K)
    assert.equal(SearchBody.properties.query.items.properties.text.maxLength, MAX_TEXT_CHARS)
    assert.equal(TextsBody.properties.texts.maxItems, MAX_TEXTS_PER_CALL)
    assert.equal(TextsBody.properties.texts.items.properties.text.maxLength, MAX_TEXT_CHARS)
    assert.equal(ClassifyBody.properties.labels.maxItems, MAX_LABELS)
    assert.equal(ClassifyBody.properties.labels.items.maxLength, MAX_LABEL_CHARS)
    assert.equal(EmbedBody.properties.texts.maxItems, MAX_EMBED_TEXTS)
    assert.equal(EmbedBody.properties.images.maxItems, MAX_EMBED_IMAGES)
  })

  it('a text one character over MAX_TEXT_CHARS is refused by the text pool, and one at it is taken', async () => {
    await assert.rejects(services.addTexts([{ text: 'a'.repeat(MAX_TEXT_CHARS + 1) }]), BadRequestError)
    const [ok] = await services.addTexts([{ text: 'b'.repeat(MAX_TEXT_CHARS) }])
    assert.equal(ok?.status, 'indexed')
    await assert.rejects(services.addTexts(Array.from({ length: MAX_TEXTS_PER_CALL + 1 }, (_, i) => ({ text: `t${i}` }))), BadRequestError)
  })

  it('a query one term over MAX_QUERY_TERMS is refused by the search service', async () => {
    const terms = (n: number): Array<{ text: string }> => Array.from({ length: n }, (_, i) => ({ text: `term ${i}` }))
    await assert.rejects(services.search({ query: terms(MAX_QUERY_TERMS + 1), target: 'images', k: 1 }), BadRequestError)
    await services.search({ query: terms(MAX_QUERY_TERMS), target: 'images', k: 1 })
  })

  it('classify refuses a single label, one label over MAX_LABELS, and a label over MAX_LABEL_CHARS', async () => {
    const image = await makeImage(1)
    const labels = (n: number): string[] => Array.from({ length: n }, (_, i) => `label ${i}`)
    await assert.rejects(services.classify(image, labels(MAX_LABELS + 1)), BadRequestError)
    await assert.rejects(services.classify(image, ['cat']), /at least 2 entries/)
    await assert.rejects(services.classify(image, ['cat', 'x'.repeat(MAX_LABEL_CHARS + 1)]), BadRequestError)
    assert.equal((await services.classify(image, labels(MAX_LABELS))).length, MAX_LABELS)
  })

  it('embed refuses one text over MAX_EMBED_TEXTS', async () => {
    await assert.rejects(services.embedTexts(Array.from({ length: MAX_EMBED_TEXTS + 1 }, (_, i) => `t${i}`)), BadRequestError)
  })

  it('the config defaults are the index defaults, and the job nice default is the encoder\'s', () => {
    const config = loadConfig({})
    assert.deepEqual(config.hnsw, { ...INDEX_DEFAULT_HNSW })
    assert.deepEqual({ ...INDEX_DEFAULT_HNSW }, { ...DEFAULT_HNSW })
    assert.equal(config.indexJobNice, DEFAULT_INDEX_JOB_NICE)
    assert.equal(DEFAULT_BACKGROUND_NICE, DEFAULT_INDEX_JOB_NICE)
  })

  it('the README states the same limits', () => {
    const readme = readFileSync('README.md', 'utf8').replace(/\s+/g, ' ')
    for (const phrase of [
      `at most ${MAX_TEXT_CHARS} characters`, `at most ${MAX_QUERY_TERMS} terms`, `\`k\` at most ${MAX_K}`,
      `2–${MAX_LABELS} labels of at most ${MAX_LABEL_CHARS} characters`, `at most ${MAX_TEXTS_PER_CALL} texts`,
      `at most ${MAX_EMBED_TEXTS} texts and ${MAX_EMBED_IMAGES} images`,
      `\`${DEFAULT_HNSW.M}\`, \`${DEFAULT_HNSW.efConstruction}\`, \`${DEFAULT_HNSW.efSearch}\``, `| \`INDEX_JOB_NICE\` | \`${DEFAULT_INDEX_JOB_NICE}\``
    ]) assert.ok(readme.includes(phrase), `README does not say "${phrase}"`)
  })
})
