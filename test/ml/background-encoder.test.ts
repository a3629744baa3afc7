import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import os from 'node:os'
import { after, before, describe, test } from 'node:test'
import sharp from 'sharp'
import { loadEncoder } from '../../src/ml/index.js'
import { backgroundNice, MESSAGE_BYTES, messagesOf } from '../../src/ml/background-encoder.js'
import { makePreview } from '../../src/ml/preview.js'
import { MALLOC_MMAP_THRESHOLD } from '../../src/ml/malloc-env.js'
import type { AlignEncoder } from '../../src/ml/index.js'
import { TIMEOUT } from '../helpers/timeouts.js'

const NICE = 7

async function png (): Promise<Buffer> {
  return await sharp({ create: { width: 90, height: 60, channels: 4, background: { r: 200, g: 30, b: 90, alpha: 0.5 } } })
    .composite([{ input: Buffer.from('<svg width="40" height="40"><circle cx="20" cy="20" r="18" fill="#1a6"/></svg>'), left: 10, top: 5 }])
    .png().toBuffer()
}

async function jpeg (): Promise<Buffer> {
  return await sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 20, g: 120, b: 220 } } }).jpeg().toBuffer()
}

function ok<T> (p: T | Error | undefined): T {
  if (p === undefined || p instanceof Error) throw p ?? new Error('no result')
  return p
}

/** nice value of every thread of a process, from /proc (field 19 of stat, after the parenthesised name) */
function threadNices (pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])
  })
}

describe('background ingest process (index jobs)', { timeout: TIMEOUT.model }, () => {
  let enc: AlignEncoder
  before(async () => { enc = await loadEncoder({ modelDir: 'models/align-mini', executionProvider: 'cpu', backgroundNice: NICE }) })
  after(async () => { await enc?.close() })

  test('gives the same embeddings, sizes and thumbnails as the server process', async () => {
    const images = [await png(), await jpeg(), await png()]
    const here = await enc.embedForIngest(images)
    const there = await enc.embedForIngest(images, { background: true })
    for (let i = 0; i < images.length; i++) {
      const a = ok(here[i])
      const b = ok(there[i])
      assert.deepEqual([b.width, b.height], [a.width, a.height])
      assert.ok(b.embedding instanceof Float32Array)
      assert.equal(b.embedding.length, enc.config.embeddingDim)
      let maxDiff = 0
      for (let j = 0; j < a.embedding.length; j++) maxDiff = Math.max(maxDiff, Math.abs(a.embedding[j]! - b.embedding[j]!))
      assert.ok(maxDiff < 1e-5, `embeddings differ by ${maxDiff}`) // batch 3 vs the pool's runs: same math, maybe another summation order
      assert.ok(Buffer.isBuffer(b.thumbnail))
      assert.ok(b.thumbnail.equals(a.thumbnail))
    }
    // and the same as encoding the decoded pixels directly
    const [direct] = await enc.encodePrepared([ok((await enc.prepareImages([images[1]!]))[0])])
    assert.ok(Math.abs(direct![0]! - ok(there[1]).embedding[0]!) < 1e-5)
  })

  test('per-image errors keep their code and message; the other images still come back', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>')
    const [good, bad, empty] = await enc.embedForIngest([await png(), svg, Buffer.alloc(0)], { background: true })
    ok(good)
    assert.ok(bad instanceof Error)
    assert.equal((bad as Error & { code?: string }).code, 'UNSUPPORTED_MEDIA_TYPE')
    assert.match(bad.message, /SVG images are not accepted/)
    assert.ok(empty instanceof Error)
    assert.equal((empty as Error & { code?: string }).code, 'UNSUPPORTED_MEDIA_TYPE')
  })

  test('every thread of the child runs at the configured nice value; the server keeps its own', { skip: process.platform === 'linux' ? undefined : 'reads /proc' }, async () => {
    ok((await enc.embedForIngest([await jpeg()], { background: true }))[0])
    const pid = enc.backgroundPid()
    assert.ok(pid !== undefined && pid !== process.pid)
    const nices = threadNices(pid)
    assert.ok(nices.length >= 3, `expected the main, libuv and libvips threads, saw ${nices.length}`)
    const own = os.getPriority() // 0 unless the tests themselves run under nice; a process can only lower its priority
    assert.deepEqual([...new Set(nices)], [Math.max(NICE, own)])
    assert.ok(threadNices(process.pid).every((n) => n === own), 'the server process keeps its priority')
  })

  test('the child starts with the malloc tuning that keeps model weights from pinning freed copies (src/ml/malloc-env.ts)', { skip: process.platform === 'linux' ? undefined : 'reads /proc' }, async () => {
    ok((await enc.embedForIngest([await jpeg()], { background: true }))[0])
    const pid = enc.backgroundPid()
    assert.ok(pid !== undefined)
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
    const expected = process.env.MALLOC_MMAP_THRESHOLD_ ?? MALLOC_MMAP_THRESHOLD
    assert.ok(environ.includes(`MALLOC_MMAP_THRESHOLD_=${expected}`), 'MALLOC_MMAP_THRESHOLD_ is not in the child\'s environment')
  })

  test('the child never runs at a higher priority than the server (max of its own nice and INDEX_JOB_NICE)', () => {
    assert.equal(backgroundNice(7, 0), 7)
    assert.equal(backgroundNice(7, 10), 10)
    assert.equal(backgroundNice(19, 19), 19)
  })

  test('a child that dies fails the batch in flight with a clear error; the next batch starts a new one', async () => {
    ok((await enc.embedForIngest([await png()], { background: true }))[0])
    const first = enc.backgroundPid()!
    const batch = await Promise.all(Array.from({ length: 16 }, async () => await jpeg()))
    const inFlight = enc.embedForIngest(batch, { background: true }) // sent before this returns
    process.kill(first, 'SIGKILL')
    const results = await inFlight
    assert.equal(results.length, 16)
    for (const e of results) {
      assert.ok(e instanceof Error)
      assert.match(e.message, /background image encoder process stopped \(signal SIGKILL\)/)
    }
    ok((await enc.embedForIngest([await png()], { background: true }))[0])
    assert.notEqual(enc.backgroundPid(), first)
  })
})

/** a 1200 × 800 JPEG with detail everywhere (a gradient under noise), so resampling differences show */
async function photo (): Promise<Buffer> {
  const noise = await sharp({ create: { width: 1200, height: 800, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).png().toBuffer()
  return await sharp({ create: { width: 1200, height: 800, channels: 3, background: { r: 40, g: 140, b: 200 } } })
    .composite([{ input: noise, blend: 'overlay' }]).jpeg({ quality: 90 }).toBuffer()
}

async function meanAbsDiff (a: Buffer, b: Buffer): Promise<number> {
  const [x, y] = await Promise.all([a, b].map(async (img) => await sharp(img).removeAlpha().raw().toBuffer()))
  assert.equal(x!.length, y!.length)
  let sum = 0
  for (let i = 0; i < x!.length; i++) sum += Math.abs(x![i]! - y![i]!)
  return sum / x!.length
}

describe('the background process for photo-sized ingest', { timeout: TIMEOUT.model }, () => {
  let enc: AlignEncoder
  before(async () => { enc = await loadEncoder({ modelDir: 'models/align-mini', executionProvider: 'cpu', backgroundNice: NICE }) })
  after(async () => { await enc?.close() })

  test('warmBackground starts the child before any image is sent, and the first batch uses that child', async () => {
    assert.equal(enc.backgroundPid(), undefined)
    enc.warmBackground!()
    const pid = enc.backgroundPid()
    assert.ok(pid !== undefined)
    enc.warmBackground!() // a second call starts nothing
    assert.equal(enc.backgroundPid(), pid)
    ok((await enc.embedForIngest([await jpeg()], { background: true }))[0])
    assert.equal(enc.backgroundPid(), pid)
  })

  test('makes the preview from the one decode when asked, in the child and here, close to makePreview from the bytes', async () => {
    const bytes = await photo()
    const opts = { size: 320, format: 'webp' as const }
    const reference = (await makePreview(bytes, opts))!
    const [there] = await enc.embedForIngest([bytes], { background: true, preview: opts })
    const [here] = await enc.embedForIngest([bytes], { preview: opts })
    for (const p of [ok(there).preview, ok(here).preview]) {
      assert.ok(p !== undefined, 'no preview came back')
      assert.deepEqual([p.width, p.height], [reference.width, reference.height])
      assert.ok(Buffer.isBuffer(p.bytes))
      const diff = await meanAbsDiff(p.bytes, reference.bytes)
      assert.ok(diff < 6, `mean absolute difference from makePreview ${diff.toFixed(2)} of 255`)
    }
    assert.equal(ok((await enc.embedForIngest([bytes], { background: true }))[0]).preview, undefined, 'none unless asked')
  })

  test('sends a camera-sized image alone, and small images together up to a vision run', () => {
    const big = Buffer.alloc(MESSAGE_BYTES + 1)
    const small = Buffer.alloc(1000)
    assert.deepEqual(messagesOf([big, big, big], 8).map((m) => m.length), [1, 1, 1])
    assert.deepEqual(messagesOf(Array.from({ length: 19 }, () => small), 8).map((m) => m.length), [8, 8, 3])
    assert.deepEqual(messagesOf([small, small, big, small], 8).map((m) => m.length), [2, 1, 1])
    assert.deepEqual(messagesOf([], 8), [])
  })
})
