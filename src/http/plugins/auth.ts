/**
 * API-key authentication for /v1. When API_KEY is set, writes and deletes need
 * `Authorization: Bearer <key>`; reads need it too when API_KEY_READS=true.
 * Routes declare `config.access` ('public' | 'read' | 'write'); by default GET/HEAD
 * are reads and everything else is a write. Paths outside /v1 (the page, /health,
 * /ready, /metrics, /docs) stay open.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { UnauthorizedError } from '../../core/errors.js'

export type Access = 'public' | 'read' | 'write'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** who may call the route when API_KEY is set */
    access?: Access
  }
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest()

/** Compares a presented key with the expected one in constant time (equal-length SHA-256 digests). */
export function keyMatches (presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected))
}

/** The access level a request needs. */
export function accessOf (request: FastifyRequest): Access {
  const path = request.routeOptions.url
  if (path === undefined || !path.startsWith('/v1/')) return 'public'
  return request.routeOptions.config.access ?? (request.method === 'GET' || request.method === 'HEAD' ? 'read' : 'write')
}

export default fp(async function authPlugin (app: FastifyInstance, opts: { apiKey: string | undefined, apiKeyReads: boolean }) {
  const apiKey = opts.apiKey
  if (apiKey === undefined) return
  app.addHook('onRequest', async (request) => {
    const access = accessOf(request)
    if (access === 'public' || (access === 'read' && !opts.apiKeyReads)) return
    const header = request.headers.authorization
    const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header)
    if (m === null || !keyMatches(m[1] ?? '', apiKey)) throw new UnauthorizedError()
  })
}, { name: 'auth' })
