/** Rendering of search results: a thumbnail grid (images) or a ranked list (texts), and the empty state. */
import { indexingNow } from './activity.js'
import { h, formatScore } from './dom.js'
import { thumbnailUrl, type SearchHit } from './api.js'
import { termLabel, type Term } from './state.js'

export interface ResultEvents {
  onMoreLikeThis: (id: string, label: string) => void
}

const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.trim() !== ''

/**
 * What a person would call this image: metadata.label (or a title or caption), else the file it came
 * from (`source`: the last part of its path), else a file name kept in metadata by older pages, else its id.
 */
export function hitLabel (hit: Pick<SearchHit, 'id' | 'metadata' | 'source'>): string {
  const m = hit.metadata ?? {}
  for (const key of ['label', 'title', 'caption']) {
    const v = m[key]
    if (nonEmpty(v)) return v
  }
  if (nonEmpty(hit.source)) return hit.source.split('/').filter((p) => p !== '').pop() ?? hit.source
  for (const key of ['filename', 'file', 'name']) {
    const v = m[key]
    if (nonEmpty(v)) return v
  }
  return hit.id
}

/** The card's tooltip: the whole source path when there is one, else the label. */
export function hitTitle (hit: Pick<SearchHit, 'id' | 'metadata' | 'source'>): string {
  return nonEmpty(hit.source) ? hit.source : hitLabel(hit)
}

/** One row per query term: the weight, the cosine with that term and a signed bar. */
function explanation (hit: SearchHit, terms: Term[], id: string): HTMLElement {
  const rows = terms.map((t, i) => {
    const cos = hit.terms?.[i]
    const bar = h('span', { class: 'explain-bar' })
    if (cos !== undefined) {
      // position: the sign of the cosine; colour: whether the weighted term raised or lowered the score
      bar.style.setProperty('--w', `${Math.min(50, Math.abs(cos) * 50)}%`)
      bar.classList.add(cos < 0 ? 'left' : 'right', cos * t.weight < 0 ? 'down' : 'up')
    }
    const weight = t.weight === 1 ? '' : ` ×${t.weight < 0 ? '−' : ''}${Math.abs(t.weight)}`
    return h('li', { class: t.weight < 0 ? 'negative' : '' },
      h('span', { class: 'explain-term', title: termLabel(t) }, termLabel(t), h('span', { class: 'explain-weight' }, weight)),
      h('span', { class: 'explain-cos' }, cos === undefined ? '—' : formatScore(cos)),
      h('span', { class: 'explain-track', 'aria-hidden': 'true' }, bar)
    )
  })
  return h('div', { class: 'explain', id, role: 'tooltip' },
    h('p', { class: 'explain-title' }, 'Similarity with each term'),
    h('ul', {}, ...rows)
  )
}

/**
 * The score, and where the hit has per-term cosines a button that shows or hides them: a tap or click
 * toggles the explanation (touch screens have no hover), hover and keyboard focus still show it.
 */
function scoreToggle (hit: SearchHit, explainId: string, row: HTMLElement): HTMLElement {
  if (hit.terms === undefined) return h('span', { class: 'card-score', title: 'combined score' }, formatScore(hit.score))
  const button = h('button', {
    type: 'button',
    class: 'card-score explain-toggle',
    title: 'combined score: tap for each term',
    'aria-expanded': 'false',
    'aria-controls': explainId,
    onclick: (e: Event) => {
      e.stopPropagation()
      const open = row.dataset.explain !== 'open'
      if (open) row.dataset.explain = 'open'
      else delete row.dataset.explain
      button.setAttribute('aria-expanded', String(open))
    }
  }, formatScore(hit.score))
  return button
}

function imageCard (hit: SearchHit, rank: number, terms: Term[], ev: ResultEvents): HTMLLIElement {
  const label = hitLabel(hit)
  const explainId = `explain-${rank}`
  const meta = h('div', { class: 'card-meta' }, h('span', { class: 'card-label', title: hitTitle(hit) }, label))
  const card = h('li', { class: 'card', 'data-id': hit.id, draggable: 'true' },
    h('img', { class: 'thumb', src: thumbnailUrl(hit.id), alt: label, loading: 'lazy', width: 160, height: 160, draggable: 'false' }),
    meta,
    h('button', {
      type: 'button',
      class: 'more-like',
      'aria-label': `More like “${label}”`,
      'aria-describedby': hit.terms === undefined ? null : explainId,
      onclick: () => ev.onMoreLikeThis(hit.id, label)
    }, 'More like this'),
    hit.terms === undefined ? null : explanation(hit, terms, explainId)
  )
  meta.append(scoreToggle(hit, explainId, card))
  // Dragging a result onto the query bar adds it as an image term.
  card.addEventListener('dragstart', (e) => {
    e.dataTransfer?.setData('application/x-align-image', JSON.stringify({ id: hit.id, label }))
    e.dataTransfer?.setData('text/plain', label)
  })
  return card
}

function textRow (hit: SearchHit, terms: Term[], rank: number): HTMLLIElement {
  const row = h('li', { class: 'text-hit', tabindex: 0, 'aria-describedby': hit.terms === undefined ? null : `explain-${rank}` },
    h('span', { class: 'text-hit-text' }, hit.text ?? hitLabel(hit))
  )
  row.append(scoreToggle(hit, `explain-${rank}`, row))
  if (hit.terms !== undefined) row.append(explanation(hit, terms, `explain-${rank}`))
  return row
}

/** Why no image matched: an index job still running (the demo pool on a first start) is not an empty index. */
function emptyImagesText (): string {
  const now = indexingNow()
  if (now === 'demo') return 'No images yet: indexing the demo pool… Results appear as images are indexed; see its progress in the indexing panel.'
  if (now === 'other') return 'No images matched yet: an index job is running (see the indexing panel); search again as it progresses.'
  return 'No images matched — is the index empty? Add images in the indexing panel.'
}

/** Render hits, or an honest empty state that says why nothing is shown. */
export function renderResults (root: HTMLElement, hits: SearchHit[], terms: Term[], mode: 'images' | 'texts', minScore: number, ev: ResultEvents): void {
  if (hits.length === 0) {
    const why = minScore > 0
      ? `Nothing scored above ${minScore.toFixed(2)} — lower the threshold or change the query.`
      : mode === 'texts'
        ? 'No texts matched — is any text indexed? (see the counts above)'
        : emptyImagesText()
    root.replaceChildren(h('p', { class: 'empty' }, why))
    return
  }
  if (mode === 'texts') {
    root.replaceChildren(h('ol', { class: 'text-hits', 'aria-label': 'Nearest texts' }, ...hits.map((hit, i) => textRow(hit, terms, i))))
    return
  }
  root.replaceChildren(h('ol', { class: 'grid', 'aria-label': 'Matching images' }, ...hits.map((hit, i) => imageCard(hit, i, terms, ev))))
}
