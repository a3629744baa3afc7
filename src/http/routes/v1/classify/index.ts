/** POST /v1/classify: zero-shot classification of one image against free-form labels. */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { BadRequestError } from '../../../../core/errors.js'
import { formLimits, readForm } from '../../../plugins/multipart.js'
import { ClassifyBody, ClassifyForm, ClassifyResponse, type ClassifyBodyT, type ClassifyFormT } from '../../../schemas/classify.js'
import { errorResponses, type TypeBoxProvider } from '../../../schemas/common.js'
import { decodeBase64Image } from '../decode-image.js'

const uploads = new WeakMap<FastifyRequest, Buffer>()

/** A single `labels` field: a JSON array of strings, or comma-separated labels. */
function splitLabels (value: string): unknown {
  const v = value.trim()
  if (!v.startsWith('[')) return v.split(',').map((s) => s.trim()).filter((s) => s !== '')
  try {
    return JSON.parse(v)
  } catch {
    throw new BadRequestError('form field "labels" starts with [ but is not a valid JSON array')
  }
}

/** Reads a multipart classify request: the `image` file part is kept, the fields become the body. */
async function readClassifyForm (request: FastifyRequest): Promise<void> {
  const parts = await readForm(request, formLimits(request.server.config, 1))
  const labels: string[] = []
  const body: Record<string, unknown> = {}
  for (const part of parts) {
    if (part.kind === 'file') {
      if (part.name !== 'image') throw new BadRequestError(`unexpected file part "${part.name}": send the image in a file part named "image"`)
      uploads.set(request, part.bytes)
    } else if (part.name === 'labels') {
      labels.push(part.value)
    } else if (part.name === 'template') {
      body.template = part.value
    } else {
      throw new BadRequestError(`unknown form field "${part.name}": expected "image", "labels" and optionally "template"`)
    }
  }
  if (!uploads.has(request)) throw new BadRequestError('file part "image" is missing')
  if (labels.length === 0) throw new BadRequestError('form field "labels" is missing')
  body.labels = labels.length === 1 ? splitLabels(labels[0] ?? '') : labels
  request.body = body
}

export default async function classifyRoutes (app: FastifyInstance): Promise<void> {
  const r = app.withTypeProvider<TypeBoxProvider>()

  r.post('/classify', {
    config: { access: 'read', multipart: true },
    schema: {
      tags: ['classify'],
      summary: 'Zero-shot classification',
      description: 'Each label is put into the template (default: the model\'s prompt template), embedded, and compared with the image; probabilities are a softmax of similarity / temperature. ' +
        'Send application/json with the image as base64, or multipart/form-data with a file part "image", a field "labels" (repeated, a JSON array, or comma-separated) and an optional field "template".',
      body: {
        content: {
          'application/json': { schema: ClassifyBody },
          'multipart/form-data': { schema: ClassifyForm }
        }
      },
      response: { 200: ClassifyResponse, ...errorResponses }
    },
    preValidation: async (request) => {
      if (request.isMultipart()) await readClassifyForm(request)
    },
    handler: async (request) => {
      const { services, metrics, config } = request.server
      const upload = uploads.get(request)
      const body = request.body as ClassifyBodyT | ClassifyFormT
      const image = upload ?? await metrics.time('decode', () => decodeBase64Image((body as ClassifyBodyT).image, 'body/image', config.maxUploadBytes))
      if (body.template !== undefined && !body.template.includes('{}')) throw new BadRequestError('body/template must contain {} where the label goes')
      const results = await metrics.time('encode', () => services.classify(image, body.labels, body.template))
      results.sort((a, b) => b.probability - a.probability)
      return { model: services.model.modelId, results }
    }
  })
}
