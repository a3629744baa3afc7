/** The indexing panel: direct uploads, upload jobs and directory jobs, each with a live progress bar. */
import { h, byId, showError, formatCount } from './dom.js'
import { limits } from './info.js'
import { ApiError, cancelJob, getJob, listJobs, startDirectoryJob, startUploadJob, uploadImages, type JobView } from './api.js'
import { noteJob } from './activity.js'

/** More files than this go to one background job instead of chunked POST /v1/images requests. */
const DIRECT_UPLOAD_LIMIT = 256
/** files per POST /v1/images; the server's MAX_FILES (from /v1/info) may lower it */
const DIRECT_CHUNK = 32
const POLL_MS = 500
/** how often the panel looks for jobs started elsewhere (the demo pool, the CLI, another browser) */
const DISCOVER_MS = 2000
const STORAGE = 'align-search.jobs'
const ACTIVE = new Set(['queued', 'running'])

interface JobCard {
  root: HTMLLIElement
  update: (v: JobView) => void
}

function jobCard (title: string, onCancel?: () => void): JobCard {
  const status = h('span', { class: 'job-status' }, 'starting')
  const fill = h('span', { class: 'progress-fill' })
  const bar = h('div', { class: 'progress', role: 'progressbar', 'aria-label': `Progress of ${title}`, 'aria-valuemin': 0, 'aria-valuemax': 1, 'aria-valuenow': 0 }, fill)
  const counts = h('p', { class: 'job-counts' }, '…')
  const errors = h('details', { class: 'job-errors', hidden: true })
  const note = h('p', { class: 'job-note', hidden: true })
  const cancel = onCancel === undefined ? null : h('button', { type: 'button', class: 'job-cancel', onclick: onCancel }, 'Cancel')
  const root = h('li', { class: 'job' },
    h('div', { class: 'job-head' }, h('strong', { class: 'job-title' }, title), status),
    bar, counts, note, errors, cancel)
  const update = (v: JobView): void => {
    root.dataset.status = v.status
    status.textContent = v.status
    const total = Math.max(0, v.total)
    // `done` counts indexed and duplicate items, `failed` the rest; the cap keeps the bar honest either way
    const processed = Math.min(total, v.done + v.failed)
    const pct = total === 0 ? (ACTIVE.has(v.status) ? 0 : 100) : Math.round((processed / total) * 100)
    fill.style.width = `${pct}%`
    bar.setAttribute('aria-valuemax', String(total))
    bar.setAttribute('aria-valuenow', String(processed))
    bar.setAttribute('aria-valuetext', `${pct}%`)
    bar.dataset.percent = String(pct)
    const duplicate = v.duplicate ?? 0
    counts.textContent = `${formatCount(processed)} / ${formatCount(total)} · ${pct}%` +
      (v.failed > 0 ? ` · ${formatCount(v.failed)} failed` : '') +
      (duplicate > 0 ? ` · ${formatCount(duplicate)} already indexed` : '')
    const list = v.errors ?? []
    errors.hidden = list.length === 0
    if (list.length > 0) {
      errors.replaceChildren(
        h('summary', {}, `${list.length} failure${list.length === 1 ? '' : 's'}`),
        h('ul', {}, ...list.slice(0, 100).map((e) => h('li', {}, h('code', {}, e.item), ': ', e.error)))
      )
    }
    // what the folder's listing left out, and why a job indexed nothing
    const skipped = v.skipped === undefined ? 0 : v.skipped.notImage + v.skipped.unreadable
    const lines = [
      v.warning ?? '',
      skipped > 0 ? `Skipped ${formatCount(v.skipped!.notImage)} not an image, ${formatCount(v.skipped!.unreadable)} unreadable (e.g. ${v.skipped!.paths.slice(0, 3).map((p) => p.path).join(', ')})` : ''
    ].filter((l) => l !== '')
    note.hidden = lines.length === 0
    note.textContent = lines.join('. ')
    note.classList.toggle('warning', v.warning !== undefined)
    if (cancel !== null) cancel.hidden = !ACTIVE.has(v.status)
  }
  return { root, update }
}

function rememberJobs (ids: string[]): void {
  try { localStorage.setItem(STORAGE, JSON.stringify(ids.slice(-10))) } catch { /* best effort */ }
}

function rememberedJobs (): string[] {
  try {
    const v = JSON.parse(localStorage.getItem(STORAGE) ?? '[]') as unknown
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
  } catch { return [] }
}

export interface IndexPanelEvents {
  /** something was indexed: refresh counts (also called every few seconds while a job runs) */
  onIndexed: () => void
}

/** Wire the indexing panel's forms and resume jobs this browser started earlier. */
export function setupIndexPanel (ev: IndexPanelEvents): void {
  const list = byId<HTMLUListElement>('jobs')
  const errorBox = byId('index-error')
  const fail = (err: unknown): void => showError(errorBox, err instanceof Error ? err.message : String(err))

  const tracked = new Set<string>()
  const trackJob = (jobId: string, title: string): void => {
    if (tracked.has(jobId)) return
    tracked.add(jobId)
    const card = jobCard(title, () => {
      cancelJob(jobId).then((v) => { if (v !== undefined && v !== null) card.update(v) }).catch(fail)
    })
    card.root.dataset.jobId = jobId
    list.prepend(card.root)
    rememberJobs([...rememberedJobs().filter((x) => x !== jobId), jobId])
    const poll = async (): Promise<void> => {
      try {
        const v = await getJob(jobId)
        card.update(v)
        noteJob(v)
        if (ACTIVE.has(v.status)) { setTimeout(() => { void poll() }, POLL_MS); return }
        // finished: it stays on this page, but a reload only brings back jobs still running
        rememberJobs(rememberedJobs().filter((x) => x !== jobId))
        ev.onIndexed()
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) {
          card.root.remove()
          rememberJobs(rememberedJobs().filter((x) => x !== jobId))
          return
        }
        fail(err)
        setTimeout(() => { void poll() }, POLL_MS * 6)
      }
    }
    void poll()
  }

  byId<HTMLFormElement>('directory-form').addEventListener('submit', (e) => {
    e.preventDefault()
    showError(errorBox, null)
    const directory = byId<HTMLInputElement>('directory').value.trim()
    startDirectoryJob(directory === '' ? '.' : directory)
      .then((id) => trackJob(id, `Folder ${directory === '' ? 'IMPORT_DIR' : directory}`))
      .catch(fail)
  })

  byId<HTMLFormElement>('upload-form').addEventListener('submit', (e) => {
    e.preventDefault()
    showError(errorBox, null)
    const input = byId<HTMLInputElement>('upload-files')
    const files = [...(input.files ?? [])]
    if (files.length === 0) { showError(errorBox, 'Choose one or more image files first.'); return }
    const title = `Upload of ${formatCount(files.length)} file${files.length === 1 ? '' : 's'}`
    if (files.length > DIRECT_UPLOAD_LIMIT) {
      if (files.length > limits.maxJobFiles) {
        showError(errorBox, `That is ${formatCount(files.length)} files; the server takes at most ${formatCount(limits.maxJobFiles)} per upload. Put them in a folder under IMPORT_DIR and index the folder instead.`)
        return
      }
      startUploadJob(files).then((id) => { trackJob(id, title); input.value = '' }).catch(fail)
      return
    }
    const card = jobCard(title)
    list.prepend(card.root)
    const view: JobView = { id: 'upload', status: 'running', total: files.length, done: 0, failed: 0, errors: [] }
    card.update(view)
    uploadImages(files, (items, offset) => {
      items.forEach((item, i) => {
        if (item.status === 'failed') {
          view.failed++
          view.errors?.push({ item: files[offset + i]?.name ?? item.id, error: item.error ?? 'failed' })
        } else {
          view.done++
          if (item.status === 'duplicate') view.duplicate = (view.duplicate ?? 0) + 1
        }
      })
      card.update(view)
    }, Math.min(DIRECT_CHUNK, limits.maxFiles))
      .then(() => { view.status = 'done'; card.update(view); input.value = ''; ev.onIndexed() })
      .catch((err) => { view.status = 'failed'; card.update(view); fail(err) })
  })

  for (const id of rememberedJobs()) trackJob(id, `Job ${id.slice(0, 8)}`)

  // every running job, wherever it started, gets a card; while any runs the header's counts refresh
  const discover = async (): Promise<void> => {
    try {
      const jobs = await listJobs()
      const active = jobs.filter((v) => ACTIVE.has(v.status))
      for (const v of active.reverse()) {
        noteJob(v)
        trackJob(v.id, v.demo === true ? 'Demo pool' : `Job ${v.id.slice(0, 8)}`)
      }
      if (active.length > 0) ev.onIndexed()
    } catch { /* the next round retries; a per-job poll reports errors */ }
    setTimeout(() => { void discover() }, DISCOVER_MS)
  }
  void discover()
}
