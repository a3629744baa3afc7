/**
 * Security headers (helmet), CORS (only when CORS_ORIGIN is set) and rate limiting
 * (only when RATE_LIMIT_MAX > 0, and only under /v1).
 */
import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { HttpConfig } from '../http-config.js'
import { RateLimitedError } from '../../core/errors.js'

/** The Content-Security-Policy: the page's own scripts and styles, images also from data: and blob: URLs. */
export const CSP_DIRECTIVES = {
  defaultSrc: ["'self'"],
  baseUri: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'", "'unsafe-inline'"],
  imgSrc: ["'self'", 'data:', 'blob:'],
  fontSrc: ["'self'", 'data:'],
  connectSrc: ["'self'"],
  workerSrc: ["'self'", 'blob:'],
  objectSrc: ["'none'"],
  frameAncestors: ["'none'"],
  formAction: ["'self'"],
  // a self-hosted service is often reached over plain http on a LAN address: upgrading would break
  // every subresource there, so the directive is added per request, over TLS only (withTlsUpgrade)
  upgradeInsecureRequests: null
}

/**
 * Whether a browser treats the origin of this request as potentially trustworthy: https, or a
 * loopback host. Elsewhere (http on a LAN address) it ignores Cross-Origin-Opener-Policy and logs
 * an error for it on every page load, so that header is sent only here.
 */
export function isTrustworthyOrigin (protocol: string, hostname: string): boolean {
  if (protocol === 'https') return true
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase()
  return host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/** The CSP for a request that came over `protocol`: over https, also upgrade-insecure-requests. */
export function withTlsUpgrade (csp: string, protocol: string): string {
  if (protocol !== 'https' || /(^|;)\s*upgrade-insecure-requests/.test(csp)) return csp
  return `${csp.replace(/;\s*$/, '')};upgrade-insecure-requests`
}

export default fp(async function securityPlugin (app: FastifyInstance, opts: { config: HttpConfig }) {
  const { config } = opts
  await app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives: CSP_DIRECTIVES },
    crossOriginOpenerPolicy: false, // per request, below
    // thumbnails may be embedded by the allowed origins when CORS is on
    crossOriginResourcePolicy: { policy: config.corsOrigin === undefined ? 'same-origin' : 'cross-origin' }
  })

  app.addHook('onSend', async (request, reply) => {
    const csp = reply.getHeader('content-security-policy')
    if (typeof csp === 'string') void reply.header('content-security-policy', withTlsUpgrade(csp, request.protocol))
    if (isTrustworthyOrigin(request.protocol, request.hostname)) void reply.header('cross-origin-opener-policy', 'same-origin')
  })

  if (config.corsOrigin !== undefined) {
    await app.register(cors, {
      origin: config.corsOrigin,
      methods: ['GET', 'HEAD', 'POST', 'DELETE'],
      allowedHeaders: ['Authorization', 'Content-Type'],
      exposedHeaders: ['Retry-After', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'Location'],
      maxAge: 600
    })
  }

  if (config.rateLimitMax > 0) {
    await app.register(rateLimit, {
      max: config.rateLimitMax,
      timeWindow: config.rateLimitWindowMs,
      // the page, health checks, metrics and docs are not limited
      allowList: (request) => !(request.routeOptions.url ?? request.url).startsWith('/v1/'),
      errorResponseBuilder: (_request, ctx) => new RateLimitedError(`rate limit exceeded: at most ${ctx.max} requests per ${Math.round(config.rateLimitWindowMs / 1000)} s; retry in ${ctx.after}`)
    })
  }
}, { name: 'security' })
