/** A tiny element builder: enough to keep the page free of a framework. */
export type Child = Node | string | number | null | undefined | false
export type Attrs = Record<string, string | number | boolean | null | undefined | ((ev: any) => void)>

/**
 * Create an element. `on*` keys attach listeners, `class` sets className, `true` sets
 * an empty attribute, and `false`/`null`/`undefined` leave the attribute out.
 */
export function h<K extends keyof HTMLElementTagNameMap> (tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue
    if (typeof value === 'function') el.addEventListener(key.slice(2).toLowerCase(), value)
    else if (key === 'class') el.className = String(value)
    else el.setAttribute(key, value === true ? '' : String(value))
  }
  append(el, children)
  return el
}

export function append (el: Element, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    el.append(typeof child === 'number' ? String(child) : child)
  }
}

/** Find an element by id or fail loudly: the page and index.html must agree. */
export function byId<T extends HTMLElement = HTMLElement> (id: string): T {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`index.html has no #${id}`)
  return el as T
}

/** Show a message in an alert region, or hide the region when the message is empty. */
export function showError (region: HTMLElement, message: string | null): void {
  region.textContent = message ?? ''
  region.hidden = message === null || message === ''
}

export function formatScore (x: number): string {
  return (x < 0 ? '−' : '') + Math.abs(x).toFixed(3)
}

export function formatCount (n: number): string {
  return n.toLocaleString('en-US')
}

/** A file size in decimal units, as `ls -h --si` and the README write them: 812 B, 24.4 MB. */
export function formatBytes (n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB']
  let i = 0
  let x = n
  while (x >= 1000 && i < units.length - 1) { x /= 1000; i++ }
  return i === 0 ? `${x} B` : `${x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : Math.round(x)} ${units[i] ?? ''}`
}

/** Read a File or Blob as a data URL (the page's CSP allows data: images, not blob:). */
export async function readAsDataUrl (blob: Blob): Promise<string> {
  return await new Promise((resolve, reject) => {
    const reader = new FileReader()
    reader.onload = () => resolve(String(reader.result))
    reader.onerror = () => reject(reader.error ?? new Error('could not read the file'))
    reader.readAsDataURL(blob)
  })
}
