/**
 * Exact ground truth (the JS brute force of vectors.ts) split over worker threads, one per core:
 * the same arithmetic as `groundTruth`, just on all cores at once, since nothing else runs meanwhile.
 */
import os from 'node:os'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { groundTruth, type Truth } from './vectors.js'

interface Job { data: Float32Array, queries: Float32Array, dim: number, k: number }
interface Part { ids: Int32Array, top1: Float32Array, kth: Float32Array }

/** Under tsx a worker must register tsx's loader itself before importing a .ts file (Node 20). */
function spawn (job: Job): Worker {
  const tsxApi = import.meta.resolve('tsx/esm/api')
  const self = import.meta.url
  const code = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(self)}) })`
  return new Worker(code, { eval: true, workerData: job })
}

export async function groundTruthParallel (data: Float32Array, queries: Float32Array, dim: number, k: number, threads = os.cpus().length): Promise<Truth> {
  const nq = queries.length / dim
  const per = Math.ceil(nq / threads)
  const shared = new Float32Array(new SharedArrayBuffer(data.byteLength))
  shared.set(data)
  const parts = await Promise.all(Array.from({ length: Math.ceil(nq / per) }, async (_, t) => {
    const q = queries.slice(t * per * dim, Math.min(nq, (t + 1) * per) * dim)
    return await new Promise<Part>((resolve, reject) => {
      const w = spawn({ data: shared, queries: q, dim, k })
      w.once('message', (m: Part) => { resolve(m); void w.terminate() })
      w.once('error', reject)
      w.once('exit', (code) => { reject(new Error(`ground-truth worker exited with ${code} before answering`)) })
    })
  }))
  const ids = new Int32Array(nq * k)
  const top1 = new Float32Array(nq)
  const kth = new Float32Array(nq)
  parts.forEach((p, t) => { ids.set(p.ids, t * per * k); top1.set(p.top1, t * per); kth.set(p.kth, t * per) })
  return { ids, top1, kth, data, queries, dim, k }
}

if (!isMainThread && parentPort !== null && (workerData as Job | undefined)?.data !== undefined) {
  const job = workerData as Job
  const r = groundTruth(job.data, job.queries, job.dim, job.k)
  parentPort.postMessage({ ids: r.ids, top1: r.top1, kth: r.kth } satisfies Part)
}
