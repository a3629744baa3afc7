/** The query bar's chips: one per term, each with a ± toggle, a weight slider and a remove button. */
import { h } from './dom.js'
import { thumbnailUrl } from './api.js'
import { clampWeight, MAX_WEIGHT, MIN_WEIGHT, termLabel, type Term } from './state.js'

export interface ChipEvents {
  /** a weight changed; `commit` is false while a slider is still moving */
  onWeight: (index: number, weight: number, commit: boolean) => void
  onRemove: (index: number) => void
}

function formatWeight (w: number): string {
  return (w < 0 ? '−' : '+') + Math.abs(w).toFixed(1)
}

function chipIcon (t: Term): HTMLElement {
  if (t.kind === 'imageId') return h('img', { class: 'chip-thumb', src: thumbnailUrl(t.imageId), alt: '' })
  if (t.kind === 'upload') return h('img', { class: 'chip-thumb', src: t.dataUrl, alt: '' })
  return h('span', { class: 'chip-kind', 'aria-hidden': 'true' }, t.kind === 'text' ? 'T' : 'V')
}

function chip (t: Term, index: number, ev: ChipEvents): HTMLLIElement {
  const label = termLabel(t)
  const kindWord = t.kind === 'text' ? 'Text' : t.kind === 'vector' ? 'Vector' : 'Image'
  const value = h('output', { class: 'chip-weight' }, formatWeight(t.weight))
  const li = h('li', { class: `chip chip-${t.kind}${t.weight < 0 ? ' negative' : ''}`, 'data-kind': t.kind })
  const setLook = (w: number): void => {
    value.textContent = formatWeight(w)
    li.classList.toggle('negative', w < 0)
  }
  const sign = h('button', {
    type: 'button',
    class: 'chip-sign',
    'aria-pressed': t.weight < 0 ? 'true' : 'false',
    'aria-label': `Negate “${label}”`,
    title: 'Make this term negative (subtract it) or positive',
    onclick: () => ev.onWeight(index, t.weight === 0 ? -1 : -t.weight, true)
  }, t.weight < 0 ? '−' : '+')
  const slider = h('input', {
    type: 'range',
    class: 'chip-slider',
    min: MIN_WEIGHT,
    max: MAX_WEIGHT,
    step: 0.1,
    value: t.weight,
    'aria-label': `Weight of “${label}”`,
    oninput: (e: Event) => {
      const w = clampWeight(Number((e.target as HTMLInputElement).value))
      setLook(w)
      ev.onWeight(index, w, false)
    },
    onchange: (e: Event) => ev.onWeight(index, clampWeight(Number((e.target as HTMLInputElement).value)), true)
  })
  const remove = h('button', {
    type: 'button',
    class: 'chip-remove',
    'aria-label': `Remove “${label}”`,
    title: 'Remove this term',
    onclick: () => ev.onRemove(index)
  }, '×')
  li.append(
    chipIcon(t),
    h('span', { class: 'chip-label', title: `${kindWord}: ${label}` }, h('span', { class: 'visually-hidden' }, `${kindWord}: `), label),
    sign, slider, value, remove
  )
  return li
}

/** Replace the chip list's contents with the current terms. */
export function renderChips (list: HTMLElement, terms: Term[], ev: ChipEvents): void {
  // Re-rendering must not drop keyboard focus: remember which control of which chip had it.
  const active = document.activeElement
  const oldChip = active instanceof HTMLElement ? active.closest('li.chip') : null
  const at = oldChip !== null && oldChip.parentElement === list ? [...list.children].indexOf(oldChip) : -1
  const control = at >= 0 && active instanceof HTMLElement ? (active.classList[0] ?? '') : ''
  list.replaceChildren(...terms.map((t, i) => chip(t, i, ev)))
  list.hidden = terms.length === 0
  if (at >= 0 && /^chip-[a-z]+$/.test(control)) {
    list.children[Math.min(at, terms.length - 1)]?.querySelector<HTMLElement>(`.${control}`)?.focus()
  }
}
