/**
 * The search page: a query bar of weighted text and image chips, a results grid with
 * per-term explanations, and the state mirrored in the URL so a query can be shared.
 */
import './styles.css'
import { byId, showError, readAsDataUrl, formatCount } from './dom.js'
import { search, uploadImages, getImage, getApiKey, setApiKey, ApiError, type SearchBody, type WireTerm } from './api.js'
import { renderChips } from './chips.js'
import { hitLabel, renderResults } from './results.js'
import { setupIndexPanel } from './jobs.js'
import { setupClassify } from './classify.js'
import { setupBackupsPanel } from './backups.js'
import { refreshInfo } from './info.js'
import { setupModels } from './models.js'
import { clampWeight, paramsToState, parseFilterText, stateToParams, MAX_K, PAGE_SIZE, type QueryState, type Term } from './state.js'

const form = byId<HTMLFormElement>('query-form')
const textInput = byId<HTMLInputElement>('query-text')
const fileInput = byId<HTMLInputElement>('query-file')
const chips = byId<HTMLUListElement>('chips')
const minScore = byId<HTMLInputElement>('min-score')
const minScoreValue = byId<HTMLOutputElement>('min-score-value')
const filterInput = byId<HTMLInputElement>('filter')
const statusEl = byId('search-status')
const errorEl = byId('search-error')
const resultsEl = byId('results')
const loadMore = byId<HTMLButtonElement>('load-more')
const shareNote = byId('share-note')
const searchSection = form.closest('section') ?? document.body

let state: QueryState = paramsToState(new URLSearchParams(location.search))
let seq = 0
let inflight: AbortController | null = null
let debounce: ReturnType<typeof setTimeout> | undefined

/** Write the shareable state into the address bar; `push` makes a history entry. */
function syncUrl (push: boolean): void {
  const { params, omitted } = stateToParams(state)
  const qs = params.toString()
  const url = `${location.pathname}${qs === '' ? '' : `?${qs}`}`
  if (url !== `${location.pathname}${location.search}`) history[push ? 'pushState' : 'replaceState'](null, '', url)
  shareNote.hidden = omitted === 0
  if (omitted > 0) {
    shareNote.replaceChildren(
      `${omitted === 1 ? 'An uploaded image is' : `${omitted} uploaded images are`} not part of the link. `,
      Object.assign(document.createElement('button'), { type: 'button', className: 'link', textContent: 'Index to share', onclick: indexUploads })
    )
  }
}

function renderControls (): void {
  renderChips(chips, state.terms, {
    onWeight: (i, w, commit) => {
      const t = state.terms[i]
      if (t === undefined) return
      t.weight = clampWeight(w)
      if (commit) { renderControls(); scheduleSearch(0) } else scheduleSearch(350)
    },
    onRemove: (i) => {
      state.terms.splice(i, 1)
      renderControls()
      if (state.terms.length === 0) textInput.focus()
      scheduleSearch(0, true)
    }
  })
  for (const radio of document.querySelectorAll<HTMLInputElement>('input[name="mode"]')) radio.checked = radio.value === state.mode
  minScore.value = String(state.minScore)
  minScoreValue.textContent = state.minScore > 0 ? state.minScore.toFixed(2) : 'off'
  filterInput.value = state.filter
}

function scheduleSearch (delayMs: number, push = false): void {
  clearTimeout(debounce)
  debounce = setTimeout(() => { void runSearch(push) }, delayMs)
}

function toWire (terms: Term[]): { query: WireTerm[], files: Map<string, Blob> } {
  const files = new Map<string, Blob>()
  const query = terms.map((t): WireTerm => {
    switch (t.kind) {
      case 'text': return { text: t.text, weight: t.weight }
      case 'imageId': return { imageId: t.imageId, weight: t.weight }
      case 'vector': return { vector: t.vector, weight: t.weight }
      case 'upload': {
        const name = `image${files.size}`
        files.set(name, t.blob)
        return { file: name, weight: t.weight }
      }
      default: return unreachableTerm(t)
    }
  })
  return { query, files }
}

/** A term kind the switch above does not know: a type error at build time, so never reached at run time. */
function unreachableTerm (t: never): never {
  throw new Error(`unknown query term ${JSON.stringify(t)}`)
}

/** Run the current query; answers to superseded queries are dropped. */
async function runSearch (push = false, focusFrom = -1): Promise<void> {
  syncUrl(push)
  inflight?.abort()
  const mine = ++seq
  showError(errorEl, null)
  if (state.terms.length === 0) {
    resultsEl.replaceChildren()
    statusEl.textContent = 'Add a word or an image to search.'
    loadMore.hidden = true
    resultsEl.dataset.seq = String(mine)
    return
  }
  const controller = new AbortController()
  inflight = controller
  const terms = state.terms.map((t) => ({ ...t }))
  const { query, files } = toWire(terms)
  const filter = parseFilterText(state.filter)
  if (typeof filter === 'string') {
    resultsEl.replaceChildren()
    loadMore.hidden = true
    statusEl.textContent = 'The search failed.'
    showError(errorEl, filter)
    return
  }
  const body: SearchBody = {
    query,
    target: state.mode,
    k: state.k,
    explain: true,
    ...(state.minScore > 0 ? { minScore: state.minScore } : {}),
    ...(filter === undefined ? {} : { filter })
  }
  resultsEl.setAttribute('aria-busy', 'true')
  statusEl.textContent = 'Searching…'
  try {
    const res = await search(body, files, controller.signal)
    if (mine !== seq) return
    renderResults(resultsEl, res.results, terms, state.mode, state.minScore, { onMoreLikeThis: moreLikeThis })
    const n = res.results.length
    statusEl.textContent = `${formatCount(n)} ${state.mode === 'texts' ? 'text' : 'image'}${n === 1 ? '' : 's'}` +
      (typeof res.tookMs === 'number' ? ` · ${Math.round(res.tookMs)} ms` : '') +
      (typeof res.model === 'string' ? ` · ${res.model}` : '') +
      (n > 0 ? ' · tap a score (or hover, or focus a result) to see how it matches each term' : '')
    loadMore.hidden = n < state.k || state.k >= MAX_K
    if (focusFrom >= 0) resultsEl.querySelectorAll<HTMLElement>('.more-like, .text-hit')[focusFrom]?.focus()
  } catch (err) {
    if (mine !== seq || (err instanceof DOMException && err.name === 'AbortError')) return
    resultsEl.replaceChildren()
    loadMore.hidden = true
    statusEl.textContent = 'The search failed.'
    showError(errorEl, (err as Error).message)
    if (err instanceof ApiError && err.status === 401) byId<HTMLDetailsElement>('api-key').open = true
  } finally {
    if (mine === seq) {
      resultsEl.setAttribute('aria-busy', 'false')
      resultsEl.dataset.seq = String(mine)
    }
  }
}

/** Image terms restored from a URL carry only an id: fetch their labels for the chips and explanations. */
async function labelImageTerms (): Promise<void> {
  const unlabeled = state.terms.filter((t): t is Extract<Term, { kind: 'imageId' }> => t.kind === 'imageId' && t.label === undefined)
  await Promise.allSettled(unlabeled.map(async (t) => {
    const img = await getImage(t.imageId)
    const label = hitLabel(img)
    if (label !== img.id) t.label = label
  }))
  if (unlabeled.length > 0) renderControls()
}

function addTerms (terms: Term[]): void {
  if (terms.length === 0) return
  state.terms.push(...terms)
  state.k = PAGE_SIZE
  renderControls()
  scheduleSearch(0, true)
}

function moreLikeThis (imageId: string, label: string): void {
  addTerms([{ kind: 'imageId', imageId, label, weight: 1 }])
  statusEl.focus()
}

async function addUploads (files: File[]): Promise<void> {
  const images = files.filter((f) => f.type.startsWith('image/') || f.type === '')
  if (images.length < files.length) showError(errorEl, 'Only image files can be query terms.')
  const terms = await Promise.all(images.map(async (blob): Promise<Term> =>
    ({ kind: 'upload', blob, name: blob.name !== '' ? blob.name : 'pasted image', dataUrl: await readAsDataUrl(blob), weight: 1 })))
  addTerms(terms)
}

/** Index the ad-hoc uploaded chips so that they become imageId terms (and shareable). */
function indexUploads (): void {
  const uploads = state.terms.filter((t): t is Extract<Term, { kind: 'upload' }> => t.kind === 'upload')
  const files = uploads.map((t) => t.blob instanceof File ? t.blob : new File([t.blob], t.name, { type: t.blob.type }))
  uploadImages(files, (items, offset) => {
    items.forEach((item, i) => {
      const term = uploads[offset + i]
      const at = term === undefined ? -1 : state.terms.indexOf(term)
      if (at < 0 || term === undefined) return
      if (item.status === 'failed') showError(errorEl, `${term.name}: ${item.error ?? 'could not be indexed'}`)
      else state.terms[at] = { kind: 'imageId', imageId: item.id, label: term.name, weight: term.weight }
    })
  }).then(() => { renderControls(); syncUrl(false); void refreshInfo() })
    .catch((err: Error) => showError(errorEl, err.message))
}

form.addEventListener('submit', (e) => {
  e.preventDefault()
  const text = textInput.value.trim()
  textInput.value = ''
  if (text !== '') { addTerms([{ kind: 'text', text, weight: 1 }]); return }
  if (state.terms.length === 0) { statusEl.textContent = 'Type a word or add an image first.'; return }
  state.k = PAGE_SIZE
  scheduleSearch(0, true)
})

fileInput.addEventListener('change', () => {
  void addUploads([...(fileInput.files ?? [])])
  fileInput.value = ''
})

for (const radio of document.querySelectorAll<HTMLInputElement>('input[name="mode"]')) {
  radio.addEventListener('change', () => {
    state.mode = radio.value === 'texts' ? 'texts' : 'images'
    state.k = PAGE_SIZE
    scheduleSearch(0)
  })
}

minScore.addEventListener('input', () => {
  state.minScore = Number(minScore.value)
  minScoreValue.textContent = state.minScore > 0 ? state.minScore.toFixed(2) : 'off'
  scheduleSearch(300)
})

filterInput.addEventListener('change', () => {
  if (filterInput.value.trim() === state.filter) return
  state.filter = filterInput.value.trim()
  state.k = PAGE_SIZE
  scheduleSearch(0, true)
})

loadMore.addEventListener('click', () => {
  const shown = resultsEl.querySelectorAll('.card, .text-hit').length
  state.k = Math.min(MAX_K, state.k + PAGE_SIZE)
  clearTimeout(debounce)
  void runSearch(false, shown)
})

byId('copy-link').addEventListener('click', () => {
  const done = (msg: string): void => { statusEl.textContent = msg }
  // The clipboard API exists only in secure contexts (https or localhost): otherwise show the link.
  const copying = navigator.clipboard?.writeText(location.href)
  if (copying === undefined) done(`Link: ${location.href}`)
  else copying.then(() => done('Link copied.'), () => done(`Link: ${location.href}`))
})

// Drag and drop: image files, or a result card dragged from the grid.
searchSection.addEventListener('dragover', (e) => { e.preventDefault(); form.classList.add('drop-target') })
searchSection.addEventListener('dragleave', (e) => { if (e.target === searchSection) form.classList.remove('drop-target') })
searchSection.addEventListener('drop', (e) => {
  e.preventDefault()
  form.classList.remove('drop-target')
  const dragged = e.dataTransfer?.getData('application/x-align-image')
  if (dragged !== undefined && dragged !== '') {
    const { id, label } = JSON.parse(dragged) as { id: string, label: string }
    addTerms([{ kind: 'imageId', imageId: id, label, weight: 1 }])
    return
  }
  void addUploads([...(e.dataTransfer?.files ?? [])])
})

// A file dropped outside the query bar must not make the browser navigate away from the page.
window.addEventListener('dragover', (e) => e.preventDefault())
window.addEventListener('drop', (e) => e.preventDefault())

// Paste an image anywhere on the page to add it to the query.
document.addEventListener('paste', (e) => {
  const files = [...(e.clipboardData?.files ?? [])].filter((f) => f.type.startsWith('image/'))
  if (files.length === 0) return
  e.preventDefault()
  void addUploads(files)
})

window.addEventListener('popstate', () => {
  state = paramsToState(new URLSearchParams(location.search))
  renderControls()
  void labelImageTerms().then(async () => { await runSearch(false) })
})

const backups = setupBackupsPanel()

// API key: stored in this browser only, sent on writes.
const keyInput = byId<HTMLInputElement>('api-key-input')
keyInput.value = getApiKey()
byId<HTMLFormElement>('api-key-form').addEventListener('submit', (e) => {
  e.preventDefault()
  setApiKey(keyInput.value.trim())
  byId('api-key-status').textContent = keyInput.value.trim() === '' ? 'No key stored.' : 'Key saved in this browser.'
  // the backups need the key: read them again with it
  void backups.refresh({ clearError: true })
})

setupIndexPanel({ onIndexed: () => { void refreshInfo() } })
setupClassify()
renderControls()
void refreshInfo()
setupModels(() => { void refreshInfo() })
if (state.terms.length > 0) void labelImageTerms().then(async () => { await runSearch(false) })
else statusEl.textContent = 'Type words and press Enter, or add an image, to search.'
