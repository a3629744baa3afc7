/**
 * Multipart index-job uploads stream into PostgreSQL's staging table (issue 22), through a real
 * API process (`dist/main/server.js`, cluster mode, INDEX_WORKER=off):
 *   - a large upload (large noise photos made with sharp) grows the API's resident memory by a
 *     small fraction of the request's size, not by the request;
 *   - its bytes reach the staging table while the request is still arriving, and a client that
 *     goes away mid-upload leaves no staged bytes and no job;
 *   - a full staging table answers 507, and a file past MAX_UPLOAD_BYTES 413, in the one error
 *     shape, each leaving nothing staged.
 */
import assert from 'node:assert/strict'
import { request, type ClientRequest, type IncomingMessage } from 'node:http'
import { after, before, describe, it } from 'node:test'
import sharp from 'sharp'
import { startTestPostgres } from '../../scripts/lib/postgres-server.js'
import { TIMEOUT } from '../helpers/timeouts.js'
import { sleep } from '../reliability/support/api.js'
import { rssOf, tempDirs } from '../reliability/support/servers.js'
import { startApi, withDatabase, type ApiProcess, type ClusterSettings } from './support/cluster.js'

const MiB = 1024 * 1024
const pg = await startTestPostgres({ engine: 'server' })
const skip = 'url' in pg ? undefined : `no PostgreSQL: ${pg.skip}`

/** A photo-sized JPEG of noise (it does not compress): about 9 MB at 3000×2000. */
async function noisePhoto (seed: number): Promise<Buffer> {
  return await sharp({ create: { width: 3000, height: 2000, channels: 3, background: { r: seed % 256, g: 90, b: 160 }, noise: { type: 'gaussian', mean: 128, sigma: 90 } } })
    .jpeg({ quality: 96 }).toBuffer()
}

/** resolves once `req` can take more, or is gone */
async function drained (req: ClientRequest): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = (): void => { req.off('drain', done); req.off('close', done); resolve() }
    req.on('drain', done)
    req.on('close', done)
  })
}

interface Upload { req: ClientRequest, response: Promise<{ status: number, body: string }>, sent: () => number }

/**
 * POSTs a multipart form of `files` to /v1/index-jobs as a stream, waiting for the socket to drain
 * (so the test holds no second copy); with `stopAfter`, it stops writing after that many bytes and
 * leaves the request open.
 */
function postForm (url: string, files: Array<{ name: string, bytes: Buffer }>, stopAfter = Infinity): Upload {
  const boundary = `----align-stream-${Date.now()}`
  const req = request(`${url}/v1/index-jobs`, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'transfer-encoding': 'chunked' } })
  let sent = 0
  const response = new Promise<{ status: number, body: string }>((resolve, reject) => {
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }) })
      res.on('error', reject)
    })
    req.on('error', reject)
  })
  response.catch(() => {})
  void (async () => {
    const write = async (b: Buffer): Promise<boolean> => {
      for (let at = 0; at < b.length; at += 256 * 1024) {
        if (sent >= stopAfter || req.destroyed) return false
        const piece = b.subarray(at, Math.min(b.length, at + 256 * 1024, at + stopAfter - sent))
        sent += piece.length
        if (!req.write(piece)) await drained(req)
      }
      return true
    }
    for (const f of files) {
      if (!await write(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="${f.name}"\r\ncontent-type: image/jpeg\r\n\r\n`))) return
      if (!await write(f.bytes)) return
      if (!await write(Buffer.from('\r\n'))) return
    }
    if (await write(Buffer.from(`--${boundary}--\r\n`))) req.end()
  })().catch(() => {})
  return { req, response, sent: () => sent }
}

describe('multipart index-job uploads stream into the staging table', { timeout: TIMEOUT.soak, ...(skip === undefined ? {} : { skip }) }, () => {
  const dirs = tempDirs('align-upload-stream-')
  const url = 'url' in pg ? pg.url : ''
  const settings: ClusterSettings = { databaseUrl: url, dirs, retryAfterMs: 6000, batchSize: 4 }
  let open: ApiProcess
  let capped: ApiProcess
  let photos: Buffer[] = []
  const staged = async (): Promise<{ bytes: number, rows: number, jobs: number }> => await withDatabase(url, async (db) =>
    (await db.query<{ bytes: number, rows: number, jobs: number }>(
      'SELECT COALESCE(sum(size), 0)::float8 AS bytes, count(*)::int AS rows, (SELECT count(*)::int FROM jobs) AS jobs FROM staged_uploads')).rows[0]!)

  before(async () => {
    photos = await Promise.all([1, 2, 3].map(noisePhoto))
    // room for two of the photos, not three; each photo fits MAX_UPLOAD_BYTES, two together do not
    const cap = photos[0]!.length + photos[1]!.length + MiB
    const perFile = Math.max(...photos.map((p) => p.length)) + MiB
    ;[open, capped] = await Promise.all([
      startApi(settings, 'api-open'),
      startApi({ ...settings, env: { STAGING_MAX_BYTES: String(cap), MAX_UPLOAD_BYTES: String(perFile) } }, 'api-capped')
    ])
  })
  after(async () => {
    await Promise.all([open, capped].map(async (p) => await p?.server.kill()))
    if ('url' in pg) await pg.stop()
    dirs.remove()
  })

  it('a large upload grows the API\'s memory by a small fraction of its size; every byte is staged, then the job exists', async () => {
    const pid = open.server.child.pid!
    // warm: the route, the parser and the pool's connections have run once
    const warm = postForm(open.server.url, [{ name: 'warm.jpg', bytes: photos[0]! }])
    assert.equal((await warm.response).status, 202)
    await sleep(500)
    const baseline = await rssOf(pid)
    const files = Array.from({ length: Number(process.env.UPLOAD_FILES ?? 40) }, (_, i) => ({ name: `photo-${i}.jpg`, bytes: photos[i % photos.length]! }))
    const requestBytes = files.reduce((n, f) => n + f.bytes.length, 0)
    let peak = baseline
    const sampler = setInterval(() => { rssOf(pid).then((r) => { peak = Math.max(peak, r) }, () => {}) }, 10)
    const upload = postForm(open.server.url, files)
    const res = await upload.response
    clearInterval(sampler)
    assert.equal(res.status, 202, res.body)
    const growth = peak - baseline
    const ratio = growth / requestBytes
    console.log(`request ${(requestBytes / MiB).toFixed(1)} MiB; API RSS baseline ${(baseline / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB, growth ${(growth / MiB).toFixed(1)} MiB = ${ratio.toFixed(3)}× the request`)
    // held whole, the request alone would be 1× (and the driver's copies more)
    assert.ok(ratio < 0.25, `the API's memory grew by ${ratio.toFixed(3)}× the request's size`)
    const { jobId } = JSON.parse(res.body) as { jobId: string }
    const rows = await withDatabase(url, async (db) => (await db.query<{ bytes: number, files: number }>(
      'SELECT sum(size)::float8 AS bytes, count(DISTINCT path)::int AS files FROM staged_uploads WHERE job_id = $1', [jobId])).rows[0]!)
    assert.deepEqual(rows, { bytes: requestBytes, files: files.length })
    // no worker runs here: drop the jobs (this one and the warm-up) so the others see an empty staging table
    await withDatabase(url, async (db) => {
      await db.query('DELETE FROM staged_uploads')
      await db.query("UPDATE jobs SET status = 'cancelled'")
    })
  })

  it('bytes are staged while the request still arrives; a client that goes away leaves no staged bytes and no job', async () => {
    const before = await staged()
    const upload = postForm(open.server.url, [{ name: 'a.jpg', bytes: photos[0]! }, { name: 'b.jpg', bytes: photos[1]! }], photos[0]!.length + photos[1]!.length / 2)
    // the first file is staged before the request is over (held in memory, it would not be)
    const deadline = Date.now() + TIMEOUT.unit
    while ((await staged()).bytes - before.bytes < photos[0]!.length) {
      assert.ok(Date.now() < deadline, `nothing of the first file was staged while the request was still arriving (${upload.sent()} bytes sent)`)
      await sleep(50)
    }
    upload.req.destroy() // the client goes away mid-way through the second file
    const gone = Date.now() + TIMEOUT.unit
    let now = await staged()
    while (now.bytes !== before.bytes || now.rows !== before.rows) {
      assert.ok(Date.now() < gone, `staged bytes left after the client went away: ${now.bytes - before.bytes}`)
      await sleep(50)
      now = await staged()
    }
    assert.equal(now.jobs, before.jobs, 'no job was created')
  })

  it('a full staging table answers 507 and a file past MAX_UPLOAD_BYTES 413, in the one error shape, leaving nothing staged', async () => {
    const before = await staged()
    // room for two photos: the third does not fit
    const full = await postForm(capped.server.url, photos.map((bytes, i) => ({ name: `p-${i}.jpg`, bytes }))).response
    assert.equal(full.status, 507, full.body)
    const body = JSON.parse(full.body) as Record<string, unknown>
    assert.deepEqual(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode'])
    assert.equal(body.code, 'INSUFFICIENT_STORAGE')
    assert.match(String(body.message), /STAGING_MAX_BYTES/)
    assert.deepEqual(await staged(), before)

    const big = Buffer.concat([photos[0]!, photos[1]!])
    const tooLarge = await postForm(capped.server.url, [{ name: 'ok.jpg', bytes: photos[2]! }, { name: 'big.jpg', bytes: big }]).response
    assert.equal(tooLarge.status, 413, tooLarge.body)
    const tl = JSON.parse(tooLarge.body) as Record<string, unknown>
    assert.deepEqual(Object.keys(tl).sort(), ['code', 'error', 'message', 'statusCode'])
    assert.match(String(tl.message), /file "big\.jpg" is larger than .*MAX_UPLOAD_BYTES/)
    assert.deepEqual(await staged(), before)
  })
})
