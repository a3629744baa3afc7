/**
 * The page's Backups panel in a real browser. Against the real server (with API_KEY): the 401 in
 * words until the key is entered, then "Make a backup" lists the new file with its image count, it
 * downloads with the key, and it is deleted. Against fake services: the button's busy state, the
 * 409 of a backup written elsewhere, and the PostgreSQL 501 message.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readSync, closeSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pino from 'pino'
import type { FastifyInstance } from 'fastify'
import type { Page } from 'playwright-core'
import { buildApp } from '../../src/http/app.js'
import { ConflictError } from '../../src/core/errors.js'
import { openBackupService } from '../../src/services/backups.js'
import type { Backend, BackupInfo, BackupStore } from '../../src/backends/ports.js'
import { testConfig } from '../helpers/build-app.js'
import { createFakeServices } from '../helpers/fake-services.js'
import { TIMEOUT } from '../helpers/timeouts.js'
import { startServer, type RunningServer } from '../helpers/spawn-server.js'
import { CHROMIUM, launchBrowser, openPage, watchErrors, type Browser } from './browser.js'

const KEY = 'backup-page-key-0123456789'
const IMAGES = ['twemoji-cat-face.png', 'twemoji-dog-face.png', 'twemoji-pizza.png']
const noBrowser = existsSync(CHROMIUM) ? false : `no chromium at ${CHROMIUM} (set CHROMIUM_PATH)`
const silent = pino({ level: 'silent' })

/** the panel has read the list (or failed to) at least once */
async function panelLoaded (page: Page): Promise<void> {
  await page.waitForFunction(() => document.querySelector<HTMLElement>('#backups')?.dataset.loaded === 'true')
}

const text = async (page: Page, selector: string): Promise<string> => (await page.textContent(selector) ?? '').trim()

describe('the Backups panel on the embedded backend', { skip: noBrowser }, () => {
  let tmp: string
  let server: RunningServer
  let browser: Browser

  const api = async <T>(method: string, route: string, body?: unknown, key = KEY): Promise<{ status: number, json: T }> => {
    const res = await fetch(server.url + route, {
      method,
      headers: { ...(key === '' ? {} : { authorization: `Bearer ${key}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    const raw = await res.text()
    return { status: res.status, json: (raw === '' ? undefined : JSON.parse(raw)) as T }
  }

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'align-search-web-backups-'))
    mkdirSync(path.join(tmp, 'import', 'few'), { recursive: true })
    for (const f of IMAGES) copyFileSync(path.resolve('demo/pool', f), path.join(tmp, 'import', 'few', f))
    server = await startServer({
      DATA_DIR: path.join(tmp, 'data'),
      IMPORT_DIR: path.join(tmp, 'import'),
      BACKUP_DIR: path.join(tmp, 'backups'),
      DEMO_POOL: '',
      API_KEY: KEY,
      API_KEY_READS: '',
      BACKUP_EVERY: '',
      RATE_LIMIT_MAX: '',
      CORS_ORIGIN: '',
      LOG_LEVEL: 'warn'
    }, { timeoutMs: TIMEOUT.server })
    const job = await api<{ jobId: string }>('POST', '/v1/index-jobs', { directory: 'few' })
    assert.equal(job.status, 202, JSON.stringify(job.json))
    while (true) {
      const { json } = await api<{ status: string }>('GET', `/v1/index-jobs/${job.json.jobId}`)
      if (json.status === 'done') break
      assert.ok(json.status === 'queued' || json.status === 'running', `index job ${json.status}`)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    browser = await launchBrowser()
  }, { timeout: TIMEOUT.browser })

  after(async () => {
    await browser?.close()
    await server?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  test('without the key it says so; with it, a click lists the new backup, which downloads and deletes', { timeout: TIMEOUT.browser }, async () => {
    const { page, errors } = await openPage(browser, server.url + '/')
    await panelLoaded(page)

    // no key stored: the server's 401 message, in words, and no list
    const denied = await api<{ message: string }>('GET', '/v1/backups', undefined, '')
    assert.equal(denied.status, 401)
    assert.ok((await text(page, '#backup-error')).startsWith(denied.json.message), await text(page, '#backup-error'))
    assert.match(await text(page, '#backup-error'), /API key/)
    assert.equal(await page.locator('.backup').count(), 0)

    // the key entered in the page's field: the panel reads the list again, and it is empty
    await page.click('#api-key summary')
    await page.fill('#api-key-input', KEY)
    await page.press('#api-key-input', 'Enter')
    await page.waitForFunction(() => document.querySelector('#backup-status')?.textContent === 'No backups yet.')
    assert.equal(await page.isVisible('#backup-error'), false)

    // the click disables the button and shows the progress bar in the same task
    const busy = await page.evaluate(() => {
      const button = document.querySelector<HTMLButtonElement>('#backup-button')
      button?.click()
      return {
        disabled: button?.disabled,
        ariaBusy: button?.getAttribute('aria-busy'),
        progress: document.querySelector<HTMLElement>('#backup-progress')?.hidden === false,
        status: document.querySelector('#backup-status')?.textContent
      }
    })
    assert.deepEqual(busy, { disabled: true, ariaBusy: 'true', progress: true, status: 'Writing a backup… the server keeps serving meanwhile.' })

    await page.locator('.backup').waitFor({ state: 'visible', timeout: 60_000 })
    await page.waitForFunction(() => document.querySelector<HTMLButtonElement>('#backup-button')?.disabled === false)
    const { json: listed } = await api<{ backups: BackupInfo[] }>('GET', '/v1/backups')
    assert.equal(listed.backups.length, 1)
    const backup = listed.backups[0]
    assert.ok(backup !== undefined)
    assert.equal(backup.images, IMAGES.length)
    assert.equal(await page.getAttribute('.backup', 'data-name'), backup.name)
    assert.match(await text(page, '.backup .backup-counts'), /^3 images · 0 texts · \d[\d.]* (kB|MB)$/)
    assert.equal(await text(page, '.backup .backup-name'), backup.name)
    assert.equal(await page.getAttribute('.backup time', 'datetime'), backup.createdAt)
    assert.equal(await text(page, '#backup-status'), `Backup written: ${backup.name} (${await text(page, '.backup .backup-counts')}).`)
    assert.equal(await page.isVisible('#backup-progress'), false)

    // the download link sends the key (fetched, then saved): the file is the server's tar
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: `Download ${backup.name}` }).click()
    ])
    assert.equal(download.suggestedFilename(), backup.name)
    const saved = path.join(tmp, 'downloaded.tar')
    await download.saveAs(saved)
    assert.equal(statSync(saved).size, backup.bytes)
    const head = Buffer.alloc(13)
    const fd = openSync(saved, 'r')
    readSync(fd, head, 0, 13, 0)
    closeSync(fd)
    assert.equal(head.toString(), 'manifest.json', 'a backup tar starts with its manifest')

    // delete asks first, then removes the file on the server too
    let asked = ''
    page.once('dialog', (dialog) => { asked = dialog.message(); void dialog.accept() })
    await page.getByRole('button', { name: `Delete ${backup.name}` }).click()
    await page.locator('.backup').waitFor({ state: 'detached' })
    assert.match(asked, new RegExp(`Delete the backup ${backup.name.replace(/\./g, '\\.')} \\(3 images`))
    assert.equal(await text(page, '#backup-status'), `Deleted ${backup.name}. No backups yet.`)
    assert.deepEqual((await api<{ backups: BackupInfo[] }>('GET', '/v1/backups')).json.backups, [])
    assert.equal(existsSync(path.join(tmp, 'backups', backup.name)), false)
    assert.deepEqual(errors, [])
    await page.close()
  })
})

describe('the Backups panel with fake services', { skip: noBrowser }, () => {
  let browser: Browser
  const apps: FastifyInstance[] = []

  /** an app whose backups are `backend`'s, through the real backup service; its base URL */
  const serve = async (backend: Backend): Promise<string> => {
    const services = createFakeServices()
    services.backups = openBackupService(backend, silent)
    const app = await buildApp({ config: testConfig(), services, logger: false, defaultMetrics: false })
    apps.push(app)
    await app.listen({ host: '127.0.0.1', port: 0 })
    const bound = app.server.address()
    assert.ok(typeof bound === 'object' && bound !== null)
    return `http://127.0.0.1:${bound.port}`
  }

  before(async () => { browser = await launchBrowser() }, { timeout: TIMEOUT.browser })
  after(async () => {
    await browser?.close()
    for (const app of apps) await app.close()
  })

  test('on PostgreSQL the panel shows the 501 message and the button stays disabled', { timeout: TIMEOUT.browser }, async () => {
    // a backend without the backups capability, as the PostgreSQL one is
    const url = await serve({ name: 'postgres' } as unknown as Backend)
    const res = await fetch(url + '/v1/backups', { method: 'POST' })
    assert.equal(res.status, 501)
    const { message } = await res.json() as { message: string }
    assert.match(message, /pg_dump/)

    const { page, errors } = await openPage(browser, url + '/')
    await panelLoaded(page)
    assert.equal(await text(page, '#backup-status'), message)
    assert.equal(await page.isDisabled('#backup-button'), true)
    assert.equal(await page.locator('.backup').count(), 0)
    assert.equal(await page.isVisible('#backup-error'), false)
    assert.deepEqual(errors, [])
    await page.close()
  })

  test('while a backup is written the button is busy; a second page gets the 409 in words, then sees it listed', { timeout: TIMEOUT.browser }, async () => {
    // a store whose backup finishes only when the test says so, refusing a second one meanwhile as the SQLite one does
    const files: BackupInfo[] = []
    let finish: (() => void) | undefined
    const store: BackupStore = {
      async create () {
        if (finish !== undefined) throw new ConflictError('a backup is being written already; retry when it is done (GET /v1/backups lists it then)')
        await new Promise<void>((resolve) => { finish = resolve })
        finish = undefined
        const info: BackupInfo = { name: 'align-search-2024-05-01T10-00-00-000Z.tar', bytes: 24_400_000, createdAt: '2024-05-01T10:00:00.000Z', images: 2979, texts: 2805, unfinishedJobs: [], scheduled: false }
        files.unshift(info)
        return info
      },
      list: async () => [...files],
      get: async () => undefined,
      remove: async () => false
    }
    const url = await serve({ name: 'sqlite', backups: store } as unknown as Backend)

    const first = await browser.context.newPage()
    const second = await browser.context.newPage()
    const errors = { first: watchErrors(first), second: watchErrors(second) }
    for (const page of [first, second]) { await page.goto(url + '/'); await panelLoaded(page) }
    assert.equal(await text(first, '#backup-status'), 'No backups yet.')

    await first.click('#backup-button')
    assert.equal(await first.isDisabled('#backup-button'), true)
    assert.equal(await first.isVisible('#backup-progress'), true)
    // the elapsed time counts up while the server writes
    await first.waitForFunction(() => /^[1-9]\d* s$/.test(document.querySelector('#backup-elapsed')?.textContent ?? ''))
    const writing = (): boolean => finish !== undefined
    while (!writing()) await new Promise((resolve) => setTimeout(resolve, 20))

    await second.click('#backup-button')
    await second.locator('#backup-error').waitFor({ state: 'visible' })
    assert.equal(await text(second, '#backup-error'), 'a backup is being written already; retry when it is done (GET /v1/backups lists it then)')
    assert.equal(await second.isDisabled('#backup-button'), false)

    const release = finish
    assert.ok(release !== undefined, 'the first backup is still being written')
    release()
    await first.locator('.backup').waitFor({ state: 'visible' })
    assert.equal(await text(first, '.backup .backup-counts'), '2,979 images · 2,805 texts · 24.4 MB')
    assert.equal(await text(first, '#backup-status'), 'Backup written: align-search-2024-05-01T10-00-00-000Z.tar (2,979 images · 2,805 texts · 24.4 MB).')
    assert.equal(await first.isDisabled('#backup-button'), false)
    assert.equal(await first.isVisible('#backup-progress'), false)
    assert.equal(await first.getAttribute('#backup-button', 'aria-busy'), null)

    // the page that got the 409 re-reads the list until the other backup is there
    await second.locator('.backup').waitFor({ state: 'visible', timeout: 30_000 })
    assert.equal(await second.isVisible('#backup-error'), false)
    assert.equal(await text(second, '#backup-status'), 'The other backup is done: align-search-2024-05-01T10-00-00-000Z.tar (2,979 images · 2,805 texts · 24.4 MB).')
    assert.deepEqual(errors, { first: [], second: [] })
    await first.close()
    await second.close()
  })
})
