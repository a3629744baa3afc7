/**
 * The model panel in the header: the active model, a running switch's progress (polled while it
 * runs), and a "Swap back" button while the previous model's vectors are on standby
 * (GET /v1/models, POST /v1/models/swap). Hidden where the server cannot switch models (501).
 */
import { byId } from './dom.js'
import { getModels, swapModels, type ModelsStatus } from './api.js'

let timer: ReturnType<typeof setTimeout> | undefined

function render (s: ModelsStatus): void {
  const panel = byId('models')
  const text = byId('models-text')
  const button = byId<HTMLButtonElement>('swap-back')
  panel.hidden = false
  panel.dataset.active = s.active.modelId
  const sb = s.standby
  button.hidden = true
  if (sb === null) {
    text.textContent = `Active model ${s.active.modelId} (${s.active.dim}-d).`
  } else if (sb.state === 'building') {
    const p = sb.progress
    const done = p === undefined ? '' : `: images ${p.images.done}/${p.images.total}, texts ${p.texts.done}/${p.texts.total}`
    text.textContent = `Active model ${s.active.modelId}; switching to ${sb.modelId} (${sb.dim}-d)${done}. Search goes on with ${s.active.modelId} until the swap.`
  } else {
    text.textContent = `Active model ${s.active.modelId} (${s.active.dim}-d); ${sb.modelId} is on standby.`
    button.hidden = false
    button.textContent = `Swap back to ${sb.modelId}`
  }
  panel.dataset.state = sb === null ? 'none' : sb.state
}

/** Reads the models' state and shows it; polls every 2 s while a switch runs. `onSwapped` runs when the active model changed. */
export async function refreshModels (onSwapped: () => void): Promise<void> {
  if (timer !== undefined) clearTimeout(timer)
  const before = byId('models').dataset.active
  let s: ModelsStatus
  try {
    s = await getModels()
  } catch {
    byId('models').hidden = true
    return
  }
  render(s)
  if (before !== undefined && before !== s.active.modelId) onSwapped()
  if (s.standby?.state === 'building') timer = setTimeout(() => { void refreshModels(onSwapped) }, 2000)
}

export function setupModels (onSwapped: () => void): void {
  const button = byId<HTMLButtonElement>('swap-back')
  button.addEventListener('click', () => {
    button.disabled = true
    swapModels().then(async () => { await refreshModels(onSwapped) }, (err: unknown) => {
      byId('models-text').textContent = `Swap failed: ${(err as Error).message}`
    }).finally(() => { button.disabled = false })
  })
  void refreshModels(onSwapped)
}
