/**
 * Index jobs run their image work in the background child process (src/ml/background-encoder.ts).
 * If that process dies mid-job, only the batches it held fail, the job finishes with a new child,
 * and running the job again indexes exactly what is missing.
 */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import pino from 'pino'
import sharp from 'sharp'
import { loadEncoder, type AlignEncoder } from '../../src/ml/index.js'
import { openServices } from '../../src/main/wiring/open-services.js'
import type { ServicesConfig } from '../../src/main/wiring/services-config.js'
import type { Services } from '../../src/services/types.js'
import { TIMEOUT } from '../helpers/timeouts.js'

const FILES = 96

describe('an index job whose background process dies', { timeout: TIMEOUT.model }, () => {
  const root = mkdtempSync(path.join(tmpdir(), 'job-background-'))
  const importDir = path.join(root, 'import')
  let enc: AlignEncoder | undefined
  let services: Services

  before(async () => {
    mkdirSync(path.join(importDir, 'batch'), { recursive: true })
    for (let i = 0; i < FILES; i++) {
      const png = await sharp({ create: { width: 64 + (i % 5), height: 64, channels: 3, background: { r: (i * 37) % 256, g: (i * 91) % 256, b: (i * 13) % 256 } } }).png().toBuffer()
      writeFileSync(path.join(importDir, 'batch', `img-${String(i).padStart(3, '0')}.png`), png)
    }
    const config: ServicesConfig = {
      modelDir: 'models/align-mini',
      dataDir: path.join(root, 'data'),
      importDir,
      executionProvider: 'cpu',
      encoderWorkers: 1,
      encoderThreads: 1,
      maxImagePixels: 100_000_000,
      hnsw: { M: 16, efConstruction: 200, efSearch: 64 },
      checkpointEvery: 1000,
      jobBatchSize: 8,
      loadEncoder: async (o) => (enc = await loadEncoder(o))
    }
    services = await openServices(config, pino({ level: 'silent' }))
  })
  after(async () => {
    await services?.close()
    rmSync(root, { recursive: true, force: true })
  })

  it('fails only the batches in flight, finishes with a new child, and a second run indexes the rest', async () => {
    const id = await services.createJob({ directory: 'batch' })
    let killed: number | undefined
    while (killed === undefined) {
      const view = (await services.getJob(id))!
      const pid = enc!.backgroundPid()
      if (view.done > 0 && pid !== undefined) { process.kill(pid, 'SIGKILL'); killed = pid } else await new Promise((resolve) => setTimeout(resolve, 5))
    }
    const first = (await services.waitForJob!(id))!
    assert.equal(first.status, 'done')
    assert.equal(first.done + first.failed, FILES)
    assert.ok(first.failed > 0 && first.failed < FILES, `failed ${first.failed} of ${FILES}`)
    for (const e of first.errors) assert.match(e.error, /background image encoder process stopped \(signal SIGKILL\)/)
    assert.notEqual(enc!.backgroundPid(), killed, 'a new child served the batches after the kill')
    assert.equal((await services.stats()).images, FILES - first.failed)

    const second = (await services.waitForJob!(await services.createJob({ directory: 'batch' })))!
    assert.equal(second.status, 'done')
    assert.deepEqual([second.done, second.failed], [FILES, 0])
    assert.equal((await services.stats()).images, FILES)
  })
})
