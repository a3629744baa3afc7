/** Small numeric helpers: percentiles, timing loops, formatting, GC. */
import v8 from 'node:v8'
import vm from 'node:vm'

export function percentile (sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]!
}

export function mean (xs: ArrayLike<number>): number {
  let s = 0
  for (let i = 0; i < xs.length; i++) s += xs[i]!
  return xs.length === 0 ? Number.NaN : s / xs.length
}

export function median (xs: number[]): number {
  return percentile([...xs].sort((a, b) => a - b), 50)
}

/**
 * Runs `fn` repeatedly for at least `minMs` and `minIters` calls (after `warmup` calls),
 * and returns the number of calls and the total time. Good for throughput, not for latency tails.
 */
export async function timeLoop (fn: () => Promise<unknown> | unknown, opts: { minMs: number, minIters?: number, warmup?: number, maxIters?: number }): Promise<{ iters: number, ms: number }> {
  for (let i = 0; i < (opts.warmup ?? 1); i++) await fn()
  const minIters = opts.minIters ?? 3
  const maxIters = opts.maxIters ?? Number.POSITIVE_INFINITY
  let iters = 0
  const t0 = performance.now()
  let ms = 0
  while ((ms < opts.minMs || iters < minIters) && iters < maxIters) {
    await fn()
    iters++
    ms = performance.now() - t0
  }
  return { iters, ms }
}

/** 3 significant figures, or a dash for a missing value */
export function fmt (x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–'
  if (x === 0) return '0'
  const a = Math.abs(x)
  if (a >= 10 ** digits) return Math.round(x).toLocaleString('en-US')
  return Number(x.toPrecision(digits)).toString()
}

export function ratio (a: number, b: number): number {
  return b > 0 ? a / b : Number.NaN
}

export const MiB = 2 ** 20

export function rssBytes (): number {
  return process.memoryUsage.rss()
}

let collect: (() => void) | undefined
/** Runs a full GC (twice, so finalizers of native objects such as indexes get to run). Works without --expose-gc. */
export function gc (): void {
  if (collect === undefined) {
    collect = (globalThis as { gc?: () => void }).gc
    if (collect === undefined) {
      v8.setFlagsFromString('--expose-gc')
      collect = vm.runInNewContext('gc') as () => void
    }
  }
  collect()
  collect()
}
