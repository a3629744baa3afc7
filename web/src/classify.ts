/** The zero-shot classification box: an image plus comma-separated labels → a bar chart of probabilities. */
import { h, byId, showError, readAsDataUrl } from './dom.js'
import { classify } from './api.js'

export function setupClassify (): void {
  const form = byId<HTMLFormElement>('classify-form')
  const fileInput = byId<HTMLInputElement>('classify-file')
  const preview = byId<HTMLImageElement>('classify-preview')
  const errorBox = byId('classify-error')
  const out = byId<HTMLOListElement>('classify-results')
  let image: string | null = null

  fileInput.addEventListener('change', () => {
    const file = fileInput.files?.[0]
    image = null
    preview.hidden = true
    if (file === undefined) return
    readAsDataUrl(file).then((url) => {
      image = url
      preview.src = url
      preview.alt = `Image to classify: ${file.name}`
      preview.hidden = false
    }).catch((err: Error) => showError(errorBox, err.message))
  })

  form.addEventListener('submit', (e) => {
    e.preventDefault()
    showError(errorBox, null)
    if (image === null) { showError(errorBox, 'Choose an image to classify first.'); return }
    // Labels are sent as typed: the API, not the page, decides what a valid label list is.
    const labels = byId<HTMLInputElement>('classify-labels').value.split(',').map((s) => s.trim()).filter((s) => s !== '')
    const template = byId<HTMLInputElement>('classify-template').value.trim()
    form.setAttribute('aria-busy', 'true')
    out.replaceChildren()
    classify(image, labels, template)
      .then((res) => {
        const rows = [...res.results].sort((a, b) => b.probability - a.probability)
        out.replaceChildren(...rows.map((r) => {
          const fill = h('span', { class: 'bar-fill' })
          fill.style.width = `${(r.probability * 100).toFixed(1)}%`
          return h('li', { class: 'bar-row' },
            h('span', { class: 'bar-label' }, r.label),
            h('span', { class: 'bar-track', 'aria-hidden': 'true' }, fill),
            h('span', { class: 'bar-value', title: `cosine ${r.score.toFixed(3)}` }, `${(r.probability * 100).toFixed(1)}%`)
          )
        }))
      })
      .catch((err: Error) => showError(errorBox, err.message))
      .finally(() => form.removeAttribute('aria-busy'))
  })
}
