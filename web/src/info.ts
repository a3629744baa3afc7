/** The header line: model name, dimension and index counts from GET /v1/info (read defensively). */
import { byId, formatCount } from './dom.js'
import { getInfo } from './api.js'

function pick (o: unknown, ...path: string[]): unknown {
  let cur = o
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = (cur as Record<string, unknown>)[key]
  }
  return cur
}

/** Server limits the page respects (updated from /v1/info; defaults match the server's). */
export const limits = { maxFiles: 64, maxJobFiles: 1000 }

export interface InfoSummary { model?: string, dim?: number, images?: number, texts?: number }

/** Describe the service in one line; keep retrying while it is still loading. */
export async function refreshInfo (): Promise<InfoSummary> {
  const el = byId('info')
  try {
    const info = await getInfo()
    const model = pick(info, 'model', 'name') ?? pick(info, 'model', 'modelId') ?? pick(info, 'model')
    const dim = pick(info, 'model', 'dim') ?? pick(info, 'model', 'embeddingDim') ?? pick(info, 'dim')
    const images = pick(info, 'counts', 'images')
    const texts = pick(info, 'counts', 'texts')
    const provider = pick(info, 'executionProvider') ?? pick(info, 'provider')
    const maxFiles = pick(info, 'limits', 'maxFiles')
    const maxJobFiles = pick(info, 'limits', 'maxJobFiles')
    if (typeof maxFiles === 'number' && maxFiles > 0) limits.maxFiles = maxFiles
    if (typeof maxJobFiles === 'number' && maxJobFiles > 0) limits.maxJobFiles = maxJobFiles
    const template = pick(info, 'model', 'promptTemplate')
    if (typeof template === 'string' && template !== '') byId<HTMLInputElement>('classify-template').placeholder = `${template} (the model's default)`
    const keyNote = byId('api-key-status')
    if (pick(info, 'auth', 'writes') === true && keyNote.textContent === '') keyNote.textContent = 'This server needs an API key for writes (indexing).'

    const parts: string[] = []
    if (typeof model === 'string') parts.push(`model ${model}`)
    if (typeof dim === 'number') parts.push(`${dim}-d`)
    if (typeof images === 'number') parts.push(`${formatCount(images)} image${images === 1 ? '' : 's'}`)
    if (typeof texts === 'number') parts.push(`${formatCount(texts)} text${texts === 1 ? '' : 's'}`)
    if (typeof provider === 'string') parts.push(provider)
    el.textContent = parts.length > 0 ? parts.join(' · ') : 'Service info unavailable'
    el.classList.remove('error-text')
    return {
      model: typeof model === 'string' ? model : undefined,
      dim: typeof dim === 'number' ? dim : undefined,
      images: typeof images === 'number' ? images : undefined,
      texts: typeof texts === 'number' ? texts : undefined
    }
  } catch (err) {
    el.textContent = `Service info: ${(err as Error).message}`
    el.classList.add('error-text')
    setTimeout(() => { void refreshInfo() }, 3000)
    return {}
  }
}
