/**
 * A throwaway stand-in for the API contract, used only to develop and eyeball the page
 * before the real server runs (the browser tests use the real server). Scores are word
 * overlap between query text and demo-pool labels, plus a little hash noise.
 * Usage: node --import tsx test/web/mock-api.ts [port]
 */
import Fastify from 'fastify'
import multipart from '@fastify/multipart'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import webRoutes from '../../src/routes/web/index.js'

interface Item { id: string, label: string, file: string }
const POOL = path.resolve('demo/pool')
const items: Item[] = readFileSync(path.join(POOL, 'manifest.jsonl'), 'utf8').trim().split('\n').slice(0, 400)
  .map((line, i) => { const m = JSON.parse(line) as { file: string, label: string }; return { id: `img_${i}`, label: m.label, file: m.file } })
const byId = new Map(items.map((x) => [x.id, x]))
const words = (s: string): Set<string> => new Set(s.toLowerCase().split(/[^a-z]+/).filter((w) => w.length > 1))
const noise = (s: string): number => { let h = 7; for (const c of s) h = (h * 31 + c.charCodeAt(0)) >>> 0; return (h % 1000) / 5000 }
function sim (a: Set<string>, b: Set<string>): number {
  let n = 0
  for (const w of a) if (b.has(w)) n++
  return a.size === 0 ? 0 : n / Math.sqrt(a.size * Math.max(1, b.size))
}
const fail = (code: number, name: string, message: string): { statusCode: number, code: string, error: string, message: string } =>
  ({ statusCode: code, code: name, error: name, message })
const jobs = new Map<string, { total: number, done: number, failed: number, status: string, started: number }>()

const app = Fastify({ logger: false })
await app.register(multipart)
await app.register(webRoutes)
app.get('/v1/info', async () => ({ model: { name: 'mock-mini', modelId: 'mock', dim: 8 }, counts: { images: items.length, texts: 0 }, executionProvider: 'cpu', limits: { maxFiles: 64, maxJobFiles: 1000 }, auth: { writes: false } }))
app.get('/v1/images/:id/thumbnail', async (req, reply) => {
  const item = byId.get((req.params as { id: string }).id)
  if (item === undefined) return await reply.code(404).send(fail(404, 'NOT_FOUND', 'no such image'))
  return await reply.type('image/png').send(readFileSync(path.join(POOL, item.file)))
})
app.post('/v1/search', async (req, reply) => {
  let body: any
  if (req.isMultipart()) {
    for await (const part of req.parts()) if (part.type === 'field' && part.fieldname === 'query') body = JSON.parse(String(part.value))
  } else body = req.body
  const query = body.query as Array<{ text?: string, imageId?: string, file?: string, vector?: number[], weight?: number }>
  for (const t of query) if (t.vector !== undefined && t.vector.length !== 8) return await reply.code(400).send(fail(400, 'BAD_REQUEST', `query/0: vector has ${t.vector.length} dimensions, the model has 8`))
  const termWords = query.map((t) => words(t.text ?? (t.imageId !== undefined ? byId.get(t.imageId)?.label ?? '' : 'face')))
  const results = items.map((it) => {
    const w = words(it.label)
    const terms = termWords.map((tw, i) => query[i]?.imageId === it.id ? 1 : sim(tw, w) * 0.5 + noise(it.id + i))
    const score = terms.reduce((s, c, i) => s + c * (query[i]?.weight ?? 1), 0) / Math.max(1, query.length)
    return { id: it.id, score, metadata: { label: it.label, filename: it.file }, terms }
  }).filter((r) => body.minScore === undefined || r.score >= body.minScore).sort((a, b) => b.score - a.score).slice(0, body.k ?? 10)
  return { results: body.explain === true ? results : results.map(({ terms, ...r }) => r), model: 'mock-mini', tookMs: 3 }
})
app.post('/v1/classify', async (req, reply) => {
  const body = req.body as { labels: string[] }
  if (body.labels.length === 0) return await reply.code(400).send(fail(400, 'FST_ERR_VALIDATION', 'body/labels must NOT have fewer than 1 items'))
  const raw = body.labels.map((l) => Math.exp(noise(l) * 20))
  const sum = raw.reduce((a, b) => a + b, 0)
  return { model: 'mock-mini', results: body.labels.map((label, i) => ({ label, probability: (raw[i] ?? 0) / sum, score: noise(label) })).sort((a, b) => b.probability - a.probability) }
})
app.post('/v1/images', async (req) => {
  const out = []
  for await (const part of req.parts()) if (part.type === 'file') { await part.toBuffer(); out.push({ id: `img_${Math.floor(Math.random() * items.length)}`, status: 'indexed' }) }
  return { items: out }
})
app.post('/v1/index-jobs', async (_req, reply) => {
  const id = `job_${jobs.size + 1}`
  jobs.set(id, { total: 40, done: 0, failed: 0, status: 'running', started: Date.now() })
  return await reply.code(202).send({ jobId: id })
})
app.get('/v1/index-jobs/:id', async (req, reply) => {
  const job = jobs.get((req.params as { id: string }).id)
  if (job === undefined) return await reply.code(404).send(fail(404, 'NOT_FOUND', 'no such job'))
  if (job.status === 'running') job.done = Math.min(job.total, Math.floor((Date.now() - job.started) / 100))
  if (job.done >= job.total && job.status === 'running') { job.status = 'done'; job.failed = 1 }
  return { id: (req.params as { id: string }).id, ...job, errors: job.failed > 0 ? [{ item: 'broken.jpg', error: 'unsupported image format' }] : [] }
})
app.delete('/v1/index-jobs/:id', async (req) => {
  const job = jobs.get((req.params as { id: string }).id)
  if (job !== undefined) job.status = 'cancelled'
  return { id: (req.params as { id: string }).id, ...job, errors: [] }
})
const address = await app.listen({ port: Number(process.argv[2] ?? 0), host: '127.0.0.1' })
console.log(`mock API and page at ${address}`)
