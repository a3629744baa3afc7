/**
 * Debian's chromium driven by playwright-core (no browser download), plus small helpers
 * that wait for what a person would wait for on the page.
 */
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

export interface Browser { context: BrowserContext, close: () => Promise<void> }

/** A fresh headless chromium with its own throwaway profile; `touch` emulates a phone (touch events, no hover). */
export async function launchBrowser (viewport = { width: 1280, height: 900 }, touch = false): Promise<Browser> {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'align-search-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    hasTouch: touch,
    isMobile: touch,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic']
  })
  return {
    context,
    close: async () => {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    }
  }
}

/** Page errors (uncaught exceptions) are test failures: collect them. */
export function watchErrors (page: Page): string[] {
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  return errors
}

/** The number of searches the page has finished (results #results[data-seq]). */
/** A new page of `browser` at `url`, with its errors watched (see watchErrors). */
export async function openPage (browser: Browser, url: string): Promise<{ page: Page, errors: string[] }> {
  const page = await browser.context.newPage()
  const errors = watchErrors(page)
  await page.goto(url)
  return { page, errors }
}

export async function searchSeq (page: Page): Promise<number> {
  return Number(await page.getAttribute('#results', 'data-seq'))
}

/** Wait until a search that started after `after` has finished and is shown. */
export async function waitForSearch (page: Page, after: number, timeout = 60_000): Promise<void> {
  await page.waitForFunction((n) => {
    const el = document.querySelector<HTMLElement>('#results')
    return el !== null && el.getAttribute('aria-busy') === 'false' && Number(el.dataset.seq) > n
  }, after, { timeout })
}

/** ids and labels of the result cards, in rank order */
export async function resultCards (page: Page): Promise<Array<{ id: string, label: string }>> {
  return await page.$$eval('#results .card', (cards) => cards.map((c) => ({
    id: (c as HTMLElement).dataset.id ?? '',
    label: c.querySelector('.card-label')?.textContent ?? ''
  })))
}
