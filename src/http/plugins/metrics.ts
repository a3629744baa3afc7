/**
 * Prometheus metrics: request durations by route/method/status, and the time spent in
 * each stage of the work (`align_stage_seconds{stage="decode"|"encode"|"search"}`).
 * `createMetrics` is framework-free; routes time their service calls with `metrics.time`.
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export type Stage = 'decode' | 'encode' | 'search'

export interface Metrics {
  readonly registry: Registry
  /** records `seconds` spent in `stage` */
  observeStage: (stage: Stage, seconds: number) => void
  /** runs `fn` and records its duration (also when it throws) under `stage` */
  time: <T>(stage: Stage, fn: () => Promise<T> | T) => Promise<T>
  /** counts items indexed, by outcome */
  countIngested: (status: 'indexed' | 'duplicate' | 'failed', n?: number) => void
}

/** One registry per app, so several apps (tests) never share counters. */
export function createMetrics (opts: { defaultMetrics?: boolean } = {}): Metrics & { httpSeconds: Histogram<'route' | 'method' | 'status'> } {
  const registry = new Registry()
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry })
  const httpSeconds = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route template, method and status code',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry]
  })
  const stageSeconds = new Histogram({
    name: 'align_stage_seconds',
    help: 'time spent per stage: decode (request image decoding), encode (model inference), search (index lookup)',
    labelNames: ['stage'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry]
  })
  const ingested = new Counter({
    name: 'align_images_ingested_total',
    help: 'images received through POST /v1/images, by outcome',
    labelNames: ['status'] as const,
    registers: [registry]
  })
  // pre-create the stage series so dashboards see zeros before the first request
  for (const stage of ['decode', 'encode', 'search'] as const) stageSeconds.labels(stage)

  const observeStage = (stage: Stage, seconds: number): void => { stageSeconds.observe({ stage }, seconds) }
  return {
    registry,
    httpSeconds,
    observeStage,
    async time (stage, fn) {
      const start = process.hrtime.bigint()
      try {
        return await fn()
      } finally {
        observeStage(stage, Number(process.hrtime.bigint() - start) / 1e9)
      }
    },
    countIngested (status, n = 1) { ingested.inc({ status }, n) }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

/** Decorates `app.metrics` and records every request's duration. */
export default fp(async function metricsPlugin (app: FastifyInstance, opts: { defaultMetrics?: boolean }) {
  const metrics = createMetrics(opts)
  app.decorate('metrics', metrics)
  app.addHook('onResponse', async (request, reply) => {
    // the route template, not the URL, keeps label cardinality bounded
    const route = request.routeOptions.url ?? 'unmatched'
    metrics.httpSeconds.observe({ route, method: request.method, status: String(reply.statusCode) }, reply.elapsedTime / 1000)
  })
}, { name: 'metrics' })
