/**
 * The browser page at `/`: static files from web/dist, which `npm run build` writes (and
 * `npm start` runs that build when it is missing or stale). The server never builds the page:
 * a production image holds no esbuild. With no built page, `/` answers 503 with the command to run.
 */
import path from 'node:path'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { FastifyPluginAsync } from 'fastify'
import fastifyStatic from '@fastify/static'
import type {} from '@fastify/swagger' // types only: lets routes say schema.hide

const WEB_DIR = fileURLToPath(new URL('../../../../web/', import.meta.url))
const DIST_DIR = path.join(WEB_DIR, 'dist')

export interface WebRoutesOptions {
  /** where the built page lives (default web/dist) */
  distDir?: string
}

const webRoutes: FastifyPluginAsync<WebRoutesOptions> = async (app, opts) => {
  const distDir = opts.distDir ?? DIST_DIR
  if (!existsSync(path.join(distDir, 'index.html'))) {
    app.get('/', { schema: { hide: true } }, async (_request, reply) => {
      return await reply.code(503).type('text/plain; charset=utf-8')
        .send('The web page is not built. Run `npm run build` (needs the dev dependencies), then restart. The API is under /v1.')
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
