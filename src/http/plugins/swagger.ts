/**
 * The OpenAPI document, generated from the route schemas, with Swagger UI at /docs
 * and the raw document at /openapi.json. `npm run openapi` writes it to openapi.yaml.
 */
import { readFileSync } from 'node:fs'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string, description: string, license: string }

/** The service version, from package.json. */
export const VERSION = pkg.version

export const TAGS = [
  { name: 'search', description: 'Text→image, image→image, mixed and weighted queries' },
  { name: 'images', description: 'Index, read and delete images' },
  { name: 'index-jobs', description: 'Index many files in the background' },
  { name: 'texts', description: 'Index texts for image→text search' },
  { name: 'embed', description: 'Raw embeddings' },
  { name: 'classify', description: 'Zero-shot classification against free-form labels' },
  { name: 'info', description: 'Model, index and service information' },
  { name: 'backups', description: 'Online backups of the embedded backend' },
  { name: 'models', description: 'The active model, and switching models without downtime' },
  { name: 'ops', description: 'Health, readiness and metrics' }
]

export default fp(async function swaggerPlugin (app: FastifyInstance) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'align-search',
        version: pkg.version,
        description: `${pkg.description}.\n\nErrors always have the shape {statusCode, code, error, message}. When API_KEY is set, writes and deletes need \`Authorization: Bearer <key>\`; reads need it too when API_KEY_READS=true.`,
        license: { name: pkg.license, identifier: pkg.license }
      },
      tags: TAGS,
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'the API_KEY of the server' } }
      }
    },
    // shared schemas (the Error shape) become named components
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}`
    }
  })
  // no staticCSP: /docs takes the app-wide CSP of plugins/security.ts. swagger-ui's own adds
  // upgrade-insecure-requests (a browser reaching http://<LAN address>/docs then fetches its
  // scripts over https and stays blank) and blocks the inline styles Swagger UI sets
  await app.register(swaggerUi, { routePrefix: '/docs' })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}, { name: 'swagger' })
