/**
 * The browser page at `/`: static files from web/dist. At startup the page is built
 * with esbuild when dist is missing or older than web/src (so `npm start` on a fresh
 * clone just works); without esbuild (a production install) a prebuilt dist is served
 * as is, and with neither `/` answers 503 with the command to run.
 */
import path from 'node:path'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { FastifyPluginAsync } from 'fastify'
import fastifyStatic from '@fastify/static'
import type {} from '@fastify/swagger' // types only: lets routes say schema.hide

const WEB_DIR = fileURLToPath(new URL('../../../web/', import.meta.url))
const DIST_DIR = path.join(WEB_DIR, 'dist')

export interface WebRoutesOptions {
  /** where the built page lives (default web/dist) */
  distDir?: string
  /** build at startup when dist is stale (default true) */
  build?: boolean
}

const webRoutes: FastifyPluginAsync<WebRoutesOptions> = async (app, opts) => {
  const distDir = opts.distDir ?? DIST_DIR
  if (opts.build !== false) {
    try {
      const { ensureWebBuilt } = await import('../../../web/build.js')
      const started = performance.now()
      if (await ensureWebBuilt(distDir)) app.log.info({ distDir, ms: Math.round(performance.now() - started) }, 'built the web page')
    } catch (err) {
      // No esbuild (dev dependencies omitted) or no sources: serve whatever dist holds.
      app.log.warn({ err }, 'could not build the web page; serving web/dist as it is')
    }
  }

  if (!existsSync(path.join(distDir, 'index.html'))) {
    app.get('/', { schema: { hide: true } }, async (_request, reply) => {
      return await reply.code(503).type('text/plain; charset=utf-8')
        .send('The web page is not built. Run `npm run build:web` (needs the dev dependencies), then restart. The API is under /v1.')
    })
    return
  }

  // wildcard: false registers one route per file found now, so unknown paths still reach
  // the app's own 404 handler; the page's files change only with a restart.
  await app.register(fastifyStatic, {
    root: distDir,
    prefix: '/',
    wildcard: false,
    decorateReply: false,
    index: ['index.html'],
    cacheControl: true,
    maxAge: 0
  })
}

export default webRoutes
