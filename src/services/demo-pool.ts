/**
 * The demo pool: on the very first start (no images yet), a folder of demo images is queued as an
 * index job. Its optional `manifest.jsonl` (lines `{file, label, set, license}`) gives each image
 * metadata `{label, set, demo: true}` (images without a manifest line get `{demo: true}`), and its labels become the initial text pool (for image → text search).
 */
import { randomUUID } from 'node:crypto'
import { readFile, realpath, stat } from 'node:fs/promises'
import path from 'node:path'
import type { JobItem } from '../backends/ports.js'
import { walkImages, type JobExecutor } from '../jobs/index.js'
import type { Logger, Metadata } from '../core/types.js'
import type { Core } from './core.js'
import { addTexts } from './texts.js'

export const MANIFEST = 'manifest.jsonl'
const QUEUED_KEY = 'demo_pool_job'

export interface DemoPoolPlan {
  root: string
  items: JobItem[]
  /** distinct labels, in manifest order */
  labels: string[]
}

interface ManifestLine { file?: unknown, label?: unknown, set?: unknown }

/** Reads manifest.jsonl into file → metadata; bad lines are skipped with a warning. */
export async function readManifest (root: string, log: Logger): Promise<Map<string, Metadata>> {
  const out = new Map<string, Metadata>()
  let text: string
  try { text = await readFile(`${root}/${MANIFEST}`, 'utf8') } catch { return out }
  text.split('\n').forEach((line, n) => {
    if (line.trim() === '') return
    let m: ManifestLine
    try { m = JSON.parse(line) as ManifestLine } catch { log.warn({ line: n + 1 }, `${MANIFEST}: not JSON, skipped`); return }
    if (typeof m.file !== 'string' || typeof m.label !== 'string') { log.warn({ line: n + 1 }, `${MANIFEST}: needs "file" and "label", skipped`); return }
    const meta: Metadata = { label: m.label }
    if (typeof m.set === 'string') meta.set = m.set
    out.set(m.file.replace(/^\.\//, ''), meta)
  })
  return out
}

/** What to queue for the demo pool, or undefined when it is not wanted (already done, images present, folder missing). */
export async function planDemoPool (dir: string, backend: { getMeta: (k: string) => Promise<string | undefined>, images: { count: () => Promise<number> } }, log: Logger): Promise<DemoPoolPlan | undefined> {
  if ((await backend.getMeta(QUEUED_KEY)) !== undefined || (await backend.images.count()) > 0) return undefined
  let root: string
  try {
    root = await realpath(dir)
    if (!(await stat(root)).isDirectory()) throw new Error('not a folder')
  } catch {
    log.warn({ demoPoolDir: dir }, 'demo pool folder not found: skipped')
    return undefined
  }
  const manifest = await readManifest(root, log)
  const items: JobItem[] = []
  for await (const rel of walkImages(root, '.')) {
    const meta = manifest.get(rel)
    // readable ids ("twemoji-cat-face"), so the README's examples and shared links can name demo images
    const id = path.basename(rel, path.extname(rel)).replace(/[^A-Za-z0-9._:-]/g, '-').slice(0, 128)
    // {"demo": true} on every demo image, so one call removes them all (DELETE /v1/images?filter=…)
    items.push({ path: rel, id, metadata: { ...meta, demo: true } })
  }
  const labels = [...new Set([...manifest.values()].map((m) => m.label as string))]
  return { root, items, labels }
}

/** Records that the demo pool was queued, so it is never queued twice. */
export async function markDemoPoolQueued (backend: { setMeta: (k: string, v: string) => Promise<void> }, jobId: string): Promise<void> {
  await backend.setMeta(QUEUED_KEY, jobId)
}

/** demo labels per addTexts call */
const TEXT_POOL_BATCH = 256

/**
 * On the very first start, queues the demo pool as an index job and adds its labels to the text
 * pool in the background (registered in `background`, stopped early once `closed.value` is set).
 */
export async function queueDemoPool (core: Core, jobs: JobExecutor, dir: string, background: Set<Promise<unknown>>, closed: { value: boolean }): Promise<void> {
  const { backend, logger } = core
  const plan = await planDemoPool(dir, backend, logger)
  if (plan === undefined) return
  const id = randomUUID()
  if (plan.items.length > 0) await jobs.submit({ id, kind: 'items', source: { demoPool: plan.root }, root: plan.root, items: plan.items })
  await markDemoPoolQueued(backend, id)
  logger.info({ job: id, images: plan.items.length, labels: plan.labels.length, demoPool: plan.root },
    'demo pool queued: this is the first start, so the demo pool is being added to have something to search (tagged {"demo": true}; remove it with DELETE /v1/images?filter={"demo":true}, or start with DEMO_POOL= to index only your own images)')
  if (plan.labels.length === 0) return
  // the label is the text (image → text answers "pizza"); the model's template only shapes its vector
  const texts = plan.labels.map((label) => ({ text: label, metadata: { label, demo: true } }))
  const template = { template: { model: true as const } }
  const task = (async () => {
    for (let i = 0; i < texts.length && !closed.value; i += TEXT_POOL_BATCH) await addTexts(core, texts.slice(i, i + TEXT_POOL_BATCH), template)
  })().catch((err: unknown) => { logger.warn({ err }, 'demo pool text labels could not be added') })
  background.add(task)
  void task.finally(() => background.delete(task))
}
