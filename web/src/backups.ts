/**
 * The Backups panel: the backup files in BACKUP_DIR (GET /v1/backups), a button that writes one
 * now (POST /v1/backups answers once the file is complete, so the panel shows elapsed time, not a
 * percentage), download and delete. Every failure is shown in the server's words; on PostgreSQL
 * the panel says what to use instead (501) and the button stays disabled.
 */
import { h, byId, showError, formatBytes, formatCount } from './dom.js'
import { ApiError, backupUrl, createBackup, deleteBackup, downloadBackupBlob, getApiKey, listBackups, type BackupInfo } from './api.js'

/** After a 409 (a backup written elsewhere: the schedule, `npm run backup`), the list is re-read this often… */
const POLL_MS = 2000
/** …until that backup is listed, or for at most this many tries (3 minutes) */
const POLL_TRIES = 90

export interface BackupsPanel {
  /** re-read the list; `clearError` also hides the panel's last error (after the API key changed) */
  refresh: (opts?: { clearError?: boolean }) => Promise<void>
}

const plural = (n: number, word: string): string => `${formatCount(n)} ${word}${n === 1 ? '' : 's'}`

/** "2 images · 0 texts · 1.21 MB", plus the jobs a restored server would resume */
function describe (b: BackupInfo): string {
  const jobs = b.unfinishedJobs.length
  return `${plural(b.images, 'image')} · ${plural(b.texts, 'text')} · ${formatBytes(b.bytes)}` +
    (jobs > 0 ? ` · ${plural(jobs, 'unfinished job')}` : '')
}

function formatTime (iso: string): string {
  const when = new Date(iso)
  return Number.isNaN(when.getTime()) ? iso : when.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' })
}

/** Wire the panel and read the list once. */
export function setupBackupsPanel (): BackupsPanel {
  const list = byId<HTMLUListElement>('backups')
  const button = byId<HTMLButtonElement>('backup-button')
  const progress = byId('backup-progress')
  const elapsed = byId('backup-elapsed')
  const status = byId('backup-status')
  const errorBox = byId('backup-error')
  const intro = byId('backup-intro')

  let shown: BackupInfo[] = []
  /** a backup this page asked for is being written */
  let writing = false
  /** the backend has no backups (PostgreSQL: 501) */
  let unavailable = false
  let polling = false

  const say = (text: string): void => { if (status.textContent !== text) status.textContent = text }
  const syncButton = (): void => {
    intro.hidden = unavailable
    button.disabled = writing || unavailable
    if (writing) button.setAttribute('aria-busy', 'true')
    else button.removeAttribute('aria-busy')
  }

  /** Show a failure in words; `asked` = the person clicked something (then a 401 opens the key field). */
  const fail = (err: unknown, asked: boolean): void => {
    if (err instanceof ApiError && err.status === 401) {
      showError(errorBox, `${err.message}. Backups hold the whole index, so they need the API key: enter it under "API key" at the top.`)
      if (asked) byId<HTMLDetailsElement>('api-key').open = true
      return
    }
    showError(errorBox, err instanceof Error ? err.message : String(err))
  }

  const summary = (): string => shown.length === 0 ? 'No backups yet.' : `${plural(shown.length, 'backup')}, newest first.`

  const row = (b: BackupInfo): HTMLLIElement => {
    const download = h('a', {
      class: 'button',
      href: backupUrl(b.name),
      download: b.name,
      'aria-label': `Download ${b.name}`,
      // a link cannot send the Authorization header: with a key stored, fetch the file instead
      onclick: (e: MouseEvent) => {
        if (getApiKey() === '') return
        e.preventDefault()
        void downloadWithKey(b.name, download)
      }
    }, 'Download')
    const remove = h('button', { type: 'button', class: 'quiet', 'aria-label': `Delete ${b.name}`, onclick: () => { void removeBackup(b, li) } }, 'Delete')
    const li = h('li', { class: 'backup', 'data-name': b.name },
      h('div', { class: 'backup-head' },
        h('time', { class: 'backup-time', datetime: b.createdAt }, formatTime(b.createdAt)),
        b.scheduled ? h('span', { class: 'backup-tag' }, 'scheduled') : null),
      h('p', { class: 'backup-counts' }, describe(b)),
      h('p', { class: 'backup-name' }, h('code', { title: b.name }, b.name)),
      h('div', { class: 'backup-actions' }, download, remove))
    return li
  }

  const render = (backups: BackupInfo[]): void => {
    shown = backups
    list.replaceChildren(...backups.map(row))
  }

  const downloadWithKey = async (name: string, link: HTMLAnchorElement): Promise<void> => {
    link.setAttribute('aria-busy', 'true')
    say(`Downloading ${name}…`)
    try {
      const url = URL.createObjectURL(await downloadBackupBlob(name))
      const a = h('a', { href: url, download: name, hidden: true })
      document.body.append(a)
      a.click()
      a.remove()
      // the browser has taken the file over once the click returns; keep the URL a while for slow disks
      setTimeout(() => URL.revokeObjectURL(url), 60_000)
      say(`Downloaded ${name}.`)
    } catch (err) {
      say(summary())
      fail(err, true)
    } finally {
      link.removeAttribute('aria-busy')
    }
  }

  const removeBackup = async (b: BackupInfo, li: HTMLLIElement): Promise<void> => {
    if (!confirm(`Delete the backup ${b.name} (${describe(b)})? The file is removed from the server.`)) return
    showError(errorBox, null)
    try {
      await deleteBackup(b.name)
    } catch (err) {
      // already gone (another tab, the schedule's pruning): the list is what matters
      if (!(err instanceof ApiError && err.status === 404)) { fail(err, true); return }
    }
    li.remove()
    shown = shown.filter((x) => x.name !== b.name)
    say(`Deleted ${b.name}. ${summary()}`)
    // the row and its focused button are gone: keep the keyboard in the panel
    ;(list.querySelector<HTMLElement>('.backup .button') ?? button).focus()
  }

  const refresh = async (opts: { clearError?: boolean } = {}): Promise<void> => {
    list.setAttribute('aria-busy', 'true')
    try {
      const backups = await listBackups()
      unavailable = false
      if (opts.clearError === true) showError(errorBox, null)
      render(backups)
      if (!writing) say(summary())
    } catch (err) {
      if (err instanceof ApiError && err.status === 501) {
        // not a failure of this request: the backend has no backups; say what to use instead
        unavailable = true
        render([])
        showError(errorBox, null)
        say(err.message)
      } else {
        if (opts.clearError === true) showError(errorBox, null)
        say('')
        fail(err, false)
      }
    } finally {
      syncButton()
      list.setAttribute('aria-busy', 'false')
      list.dataset.loaded = 'true'
    }
  }

  /** A backup is being written elsewhere (409): re-read the list until it shows up. */
  const waitForOther = (): void => {
    if (polling) return
    polling = true
    const known = new Set(shown.map((b) => b.name))
    let tries = 0
    const poll = async (): Promise<void> => {
      tries++
      try {
        const backups = await listBackups()
        const added = backups.find((b) => !known.has(b.name))
        if (added !== undefined) {
          polling = false
          render(backups)
          showError(errorBox, null)
          if (!writing) say(`The other backup is done: ${added.name} (${describe(added)}).`)
          return
        }
      } catch { /* the next try, or the next click, says what is wrong */ }
      if (tries < POLL_TRIES) setTimeout(() => { void poll() }, POLL_MS)
      else polling = false
    }
    setTimeout(() => { void poll() }, POLL_MS)
  }

  button.addEventListener('click', () => {
    if (writing || unavailable) return
    showError(errorBox, null)
    writing = true
    syncButton()
    progress.hidden = false
    say('Writing a backup… the server keeps serving meanwhile.')
    const started = Date.now()
    // elapsed time outside the live region, so a screen reader is not told every second
    const tick = (): void => {
      const text = `${Math.floor((Date.now() - started) / 1000)} s`
      elapsed.textContent = text
      progress.setAttribute('aria-valuetext', `writing, ${text} so far`)
    }
    tick()
    const timer = setInterval(tick, 1000)
    createBackup()
      .then(async (info) => {
        writing = false
        await refresh()
        // the answer is the truth even if the list was read before the file was renamed into place
        if (!shown.some((b) => b.name === info.name)) render([info, ...shown])
        say(`Backup written: ${info.name} (${describe(info)}).`)
      })
      .catch((err) => {
        writing = false
        say(summary())
        if (err instanceof ApiError && err.status === 501) { unavailable = true; say(err.message); return }
        fail(err, true)
        if (err instanceof ApiError && err.status === 409) waitForOther()
      })
      .finally(() => {
        clearInterval(timer)
        progress.hidden = true
        elapsed.textContent = ''
        syncButton()
      })
  })

  void refresh()
  return { refresh }
}
