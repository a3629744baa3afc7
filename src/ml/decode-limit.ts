/**
 * How many images the process prepares at once, across all calls (uploads and index jobs share it).
 * Each sharp call is a task on libuv's thread pool (UV_THREADPOOL_SIZE), which the tokenizer's
 * async encode, fs reads and DNS also use; a prepareImage keeps up to 2 tasks in flight. Two
 * threads are left free so a text search never queues behind a batch of decodes: 2 images at a time
 * with the pool of 6 that `npm start` and the Dockerfile set, 1 with libuv's default of 4. libuv sizes
 * its pool once, from the environment at first use, so the variable must be set before the process starts.
 * @param env where UV_THREADPOOL_SIZE is read (default process.env)
 */
export function decodeConcurrency (env: Record<string, string | undefined> = process.env): number {
  const size = Number(env.UV_THREADPOOL_SIZE)
  const pool = Number.isInteger(size) && size > 0 ? Math.min(size, 1024) : 4
  return Math.max(1, Math.floor((pool - 2) / 2))
}

/** A FIFO counting semaphore: `run(fn)` starts fn when fewer than `limit` are running. */
export function createLimiter (limit: number): <R>(fn: () => Promise<R>) => Promise<R> {
  let active = 0
  const waiting: Array<() => void> = []
  return async <R>(fn: () => Promise<R>): Promise<R> => {
    if (active >= limit) await new Promise<void>((resolve) => waiting.push(resolve))
    else active++
    try {
      return await fn()
    } finally {
      const next = waiting.shift()
      if (next !== undefined) next() // the slot passes straight to the next waiter
      else active--
    }
  }
}
