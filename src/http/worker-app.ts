/**
 * The index worker's own small HTTP server (WORKER_PORT): GET /health (the process answers),
 * GET /ready (the worker runs and the database answers, else 503 with the reason) and GET /metrics
 * (Prometheus: the process metrics and the worker's batches). No API: workers take their work from
 * the queue, not from clients.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { Counter, Gauge, Histogram } from 'prom-client'
import type { HttpConfig } from './http-config.js'
import { NotReadyError } from '../core/errors.js'
import type { BatchEvent } from '../jobs/cluster/index-worker.js'
import errorsPlugin, { RETRY_AFTER_S } from './plugins/errors.js'
import metricsPlugin from './plugins/metrics.js'
import metricsRoutes from './routes/metrics/index.js'
import type { BackendHealth } from '../backends/ports.js'

export interface WorkerStatus {
  /** false until the worker runs, and again once it is closing */
  running: () => boolean
  health: () => Promise<BackendHealth>
  /** batches being worked on now */
  inFlight: () => number
}

export interface WorkerApp {
  app: FastifyInstance
  /** feeds the worker's batch events into the metrics */
  onBatch: (e: BatchEvent) => void
}

export async function buildWorkerApp (config: HttpConfig, logger: FastifyBaseLogger, status: WorkerStatus): Promise<WorkerApp> {
  const app = Fastify({ loggerInstance: logger, return503OnClosing: true })
  await app.register(errorsPlugin)
  await app.register(metricsPlugin, { defaultMetrics: true })
  const registers = [app.metrics.registry]
  const batches = new Counter({ name: 'align_index_batches_total', help: 'index batches by outcome: committed, skipped (job finished or cancelled, or nothing left), failed (back to the queue)', labelNames: ['outcome'] as const, registers })
  const images = new Counter({ name: 'align_index_images_total', help: 'items of committed batches: indexed (new), duplicate (content already stored), failed', labelNames: ['status'] as const, registers })
  const seconds = new Histogram({ name: 'align_index_batch_seconds', help: 'time per committed batch: read, decode, encode and commit', buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], registers })
  app.metrics.registry.registerMetric(new Gauge({ name: 'align_index_batches_in_flight', help: 'batches this worker holds now', registers: [], collect () { this.set(status.inFlight()) } }))
  // every series from the start, so dashboards see zeros before the first batch
  for (const outcome of ['committed', 'skipped', 'failed']) batches.inc({ outcome }, 0)
  for (const status of ['indexed', 'duplicate', 'failed']) images.inc({ status }, 0)

  app.get('/health', { logLevel: 'warn' }, async () => ({ status: 'ok' }))
  app.get('/ready', { logLevel: 'warn' }, async (_request, reply) => {
    // answered, not thrown: a worker still loading its model is routine, not an error to log with a stack
    const notReady = async (message: string): Promise<void> => {
      const err = new NotReadyError(message)
      await reply.code(503).header('retry-after', String(RETRY_AFTER_S)).send({ statusCode: 503, code: err.code, error: 'Service Unavailable', message: err.message })
    }
    const health = await status.health().catch((err: unknown) => ({ ok: false, reason: (err as Error).message }))
    if (!status.running()) return await notReady(`the index worker is not running: ${health.ok ? 'loading the model, or shutting down' : health.reason ?? 'starting'}`)
    if (!health.ok) return await notReady(`the database cannot serve: ${health.reason ?? 'no reason given'}`)
    return { status: 'ready' }
  })
  await app.register(metricsRoutes)

  const onBatch = (e: BatchEvent): void => {
    batches.inc({ outcome: e.outcome })
    if (e.outcome !== 'committed') return
    images.inc({ status: 'indexed' }, e.indexed)
    images.inc({ status: 'duplicate' }, e.duplicates)
    images.inc({ status: 'failed' }, e.items - e.indexed - e.duplicates)
    seconds.observe(e.ms / 1000)
  }
  return { app, onBatch }
}
