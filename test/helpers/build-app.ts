/**
 * Builds the app exactly as the server does (`buildApp` → `buildOptions`), with the fake
 * services injected and a config from an env overlay (temporary DATA_DIR and IMPORT_DIR).
 * Also: a multipart body builder for `app.inject`.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/http/app.js'
import { loadConfig, type Config } from '../../src/main/config/config.js'
import type { Services } from '../../src/services/types.js'
import { createFakeServices, type FakeServices } from './fake-services.js'

export interface TestApp { app: FastifyInstance, services: FakeServices, config: Config }

let tmpRoot: string | undefined

/** A config from defaults plus `env`, with temporary data and import folders (removed when the process exits). */
export function testConfig (env: Record<string, string> = {}): Config {
  if (tmpRoot === undefined) {
    const root = mkdtempSync(path.join(tmpdir(), 'align-routes-'))
    process.once('exit', () => { rmSync(root, { recursive: true, force: true }) })
    tmpRoot = root
  }
  const dir = mkdtempSync(path.join(tmpRoot, 'app-'))
  return loadConfig({ DATA_DIR: path.join(dir, 'data'), IMPORT_DIR: path.join(dir, 'import'), DEMO_POOL: '', ...env })
}

/** Builds an app with fake services; closed after the test. */
export async function buildTestApp (t: TestContext | undefined, env: Record<string, string> = {}, services?: Services): Promise<TestApp> {
  const config = testConfig(env)
  const fake = (services ?? createFakeServices()) as FakeServices
  const app = await buildApp({ config, services: fake, logger: false, web: false, defaultMetrics: false })
  t?.after(async () => { await app.close() })
  return { app, services: fake, config }
}

export type FormEntry =
  | readonly [name: string, value: string]
  | readonly [name: string, file: { readonly bytes: Buffer, readonly filename: string, readonly type?: string }]

/** A multipart/form-data body (parts in the given order) and its content-type header. */
export async function multipart (entries: readonly FormEntry[]): Promise<{ payload: Buffer, headers: { 'content-type': string } }> {
  const form = new FormData()
  for (const [name, value] of entries) {
    if (typeof value === 'string') form.append(name, value)
    else form.append(name, new Blob([new Uint8Array(value.bytes)], { type: value.type ?? 'image/png' }), value.filename)
  }
  const req = new Request('http://localhost/', { method: 'POST', body: form })
  return { payload: Buffer.from(await req.arrayBuffer()), headers: { 'content-type': req.headers.get('content-type') ?? '' } }
}

/** Parses a JSON response body. */
export function json<T = any> (res: { body: string }): T {
  return JSON.parse(res.body) as T
}

/** Asserts the error shape (`items` only where every item of a request failed), and returns the body. */
export function errorBody (res: { body: string, statusCode: number }): { statusCode: number, code: string, error: string, message: string, items?: Array<Record<string, unknown>> } {
  const body = json(res)
  if (typeof body !== 'object' || body === null) throw new Error(`not an error body: ${res.body}`)
  const keys = Object.keys(body).filter((k) => k !== 'items' || Array.isArray(body.items)).sort().join(',')
  if (keys !== 'code,error,message,statusCode' && keys !== 'code,error,items,message,statusCode') throw new Error(`error body has keys ${keys}: ${res.body}`)
  if (body.statusCode !== res.statusCode) throw new Error(`error body statusCode ${String(body.statusCode)} != ${res.statusCode}`)
  return body
}
