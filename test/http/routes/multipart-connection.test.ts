/**
 * A form refused part-way through must leave its keep-alive connection usable: the next request a
 * client sends on it is answered. Refused at a part's end (a file past MAX_UPLOAD_BYTES), and in the
 * middle of a file (a full staging area: cluster mode's 507, the CI failure of upload-streaming).
 * Over a real socket (app.inject has none), with an agent of one socket, so the second request can
 * only go where the first one went.
 */
import assert from 'node:assert/strict'
import { Agent, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, it, type TestContext } from 'node:test'
import { StorageFullError } from '../../../src/core/errors.js'
import { buildTestApp, multipart } from '../../helpers/build-app.js'
import { createFakeServices, fakeImage } from '../../helpers/fake-services.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

interface Answer { status: number, body: string, socket: unknown }

/** One request on `agent`; resolves with the answer once the request is sent and the response read. */
async function send (agent: Agent, url: string, method: string, payload?: { body: Buffer, headers: Record<string, string> }): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    const req = request(url, { method, agent, headers: payload?.headers ?? {} }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), socket: req.socket }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(payload?.body)
  })
}

/** a listening app and a one-socket keep-alive agent, both closed after the test */
async function serve (t: TestContext, ...args: Parameters<typeof buildTestApp> extends [unknown, ...infer R] ? R : never): Promise<{ base: string, agent: Agent }> {
  const { app } = await buildTestApp(t, ...args)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.after(() => { agent.destroy() })
  return { base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, agent }
}

describe('a multipart request refused part-way through', { timeout: TIMEOUT.unit }, () => {
  it('at a file past MAX_UPLOAD_BYTES leaves its keep-alive connection able to answer the next request', async (t) => {
    const { base, agent } = await serve(t, { MAX_UPLOAD_BYTES: '4096' })
    // the first file is too large; the second (256 KiB, which the kernel's buffers take whole, so the
    // client always finishes sending) is never read by the route
    const form = await multipart([
      ['file', { bytes: Buffer.alloc(64 * 1024, 7), filename: 'big.png' }],
      ['file', { bytes: Buffer.concat([fakeImage(1), Buffer.alloc(256 * 1024, 1)]), filename: 'next.png' }]
    ])
    const refused = await send(agent, `${base}/v1/images`, 'POST', { body: form.payload, headers: form.headers })
    assert.equal(refused.status, 413, refused.body)
    assert.match(refused.body, /big\.png.*MAX_UPLOAD_BYTES/)
    // the socket went back to the agent: the next request is sent on it
    const next = await send(agent, `${base}/v1/info`, 'GET')
    assert.equal(next.status, 200, next.body)
    assert.equal(next.socket, refused.socket, 'the second request went on another connection: the test proves nothing')
  })

  it('in the middle of a file (a full staging area) leaves its keep-alive connection able to answer the next request', async (t) => {
    const services = createFakeServices()
    // reads one piece of the first file, then refuses, as staging does when the cap is reached mid-file
    services.createUploadJob = async (upload) => {
      const files = (upload as AsyncIterable<{ bytes: Buffer | AsyncIterable<Buffer> }>)[Symbol.asyncIterator]()
      const first = (await files.next()).value!.bytes as AsyncIterable<Buffer>
      const pieces = first[Symbol.asyncIterator]()
      await pieces.next()
      // left unread, as staging leaves a file it refuses
      await pieces.return?.()
      await files.return?.()
      throw new StorageFullError('the staging area is full (STAGING_MAX_BYTES)')
    }
    const { base, agent } = await serve(t, {}, services)
    const form = await multipart([['file', { bytes: Buffer.concat([fakeImage(1), Buffer.alloc(512 * 1024, 1)]), filename: 'a.png' }]])
    const refused = await send(agent, `${base}/v1/index-jobs`, 'POST', { body: form.payload, headers: form.headers })
    assert.equal(refused.status, 507, refused.body)
    const next = await send(agent, `${base}/v1/info`, 'GET')
    assert.equal(next.status, 200, next.body)
    assert.equal(next.socket, refused.socket, 'the second request went on another connection: the test proves nothing')
  })
})
