/**
 * Ingest asks the encoder for the preview kept for re-embedding (PREVIEW_SIZE), so that it comes
 * from the decode that makes the model input, and stores that one: a second decode of each photo
 * in the server process cost more than the first.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import pino from 'pino'
import type { Backend, NewImage } from '../../src/backends/ports.js'
import type { EmbedForIngestOptions } from '../../src/ml/types.js'
import type { Core } from '../../src/services/core.js'
import { ingestImages } from '../../src/services/ingest-images.js'
import { createFakeEncoder, makeImage } from '../helpers/fake-encoder.js'
import { TIMEOUT } from '../helpers/timeouts.js'

/** a backend with model slots that records the rows written (nothing else is stored) */
function recordingBackend (rows: NewImage[]): Backend {
  return {
    models: {},
    images: {
      idsBySha: async () => new Map(),
      existingIds: async () => new Set(),
      add: async (batch: NewImage[]) => { rows.push(...batch); return batch.map((_, i) => ({ id: `id-${rows.length - batch.length + i}`, status: 'indexed' })) }
    }
  } as unknown as Backend
}

describe('ingest and the preview kept for re-embedding', { timeout: TIMEOUT.unit }, () => {
  it('asks the encoder for the preview with the image and stores the one it made', async () => {
    const enc = createFakeEncoder()
    const asked: Array<EmbedForIngestOptions | undefined> = []
    const marker = { bytes: Buffer.from('preview from the one decode'), width: 30, height: 20 }
    const embed = enc.embedForIngest.bind(enc)
    enc.embedForIngest = async (images, opts) => {
      asked.push(opts)
      return (await embed(images, opts)).map((r) => r instanceof Error ? r : { ...r, preview: marker })
    }
    const rows: NewImage[] = []
    const core: Core = {
      encoder: enc,
      backend: recordingBackend(rows),
      dim: enc.config.embeddingDim,
      logger: pino({ level: 'silent' }),
      keep: { preview: { size: 320, format: 'webp' }, originals: 'none', sourceRoots: [] }
    }
    const results = await ingestImages(core, [{ bytes: await makeImage(1) }, { bytes: await makeImage(2) }], { background: true })
    assert.deepEqual(results.map((r) => r.status), ['indexed', 'indexed'])
    assert.deepEqual(asked, [{ background: true, preview: { size: 320, format: 'webp' } }])
    assert.equal(rows.length, 2)
    for (const row of rows) assert.deepEqual(row.preview, marker)
  })
})
