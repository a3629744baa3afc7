import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TIMEOUT } from '../helpers/timeouts.js'
import { defaultState, paramsToState, parseFilterText, stateToParams, PAGE_SIZE, type QueryState } from '../../web/src/state.js'

test('a query survives the round trip through the URL, in order and with its weights', { timeout: TIMEOUT.unit }, () => {
  const state: QueryState = {
    terms: [
      { kind: 'text', text: 'cat face, smiling & more', weight: 1 },
      { kind: 'imageId', imageId: 'img_42', weight: -0.5 },
      { kind: 'text', text: 'a:b@c', weight: 2 },
      { kind: 'vector', vector: [0.25, -1, 3e-4], weight: 1 }
    ],
    mode: 'texts',
    minScore: 0.3,
    k: 48,
    filter: '{"album":{"$in":["x","y"]},"taken":{"$gte":"2020-01-01"}}'
  }
  const { params, omitted } = stateToParams(state)
  assert.equal(omitted, 0)
  const back = paramsToState(new URLSearchParams(params.toString()))
  assert.deepEqual(back, state)
})

test('defaults stay out of the URL, and uploaded images are counted as not shareable', { timeout: TIMEOUT.unit }, () => {
  const state = defaultState()
  state.terms.push({ kind: 'upload', blob: new Blob([]), name: 'x.png', dataUrl: 'data:,', weight: 1 })
  state.terms.push({ kind: 'text', text: 'dog', weight: 1 })
  const { params, omitted } = stateToParams(state)
  assert.equal(omitted, 1)
  assert.equal(params.toString(), 'q=t%3Adog')
})

test('a hand-edited URL cannot produce an invalid query', { timeout: TIMEOUT.unit }, () => {
  const s = paramsToState(new URLSearchParams('q=t@9:cat&q=t:&q=i:&q=v:1,abc&q=%20&mode=weird&min=7&k=-3'))
  assert.deepEqual(s.terms, [{ kind: 'text', text: 'cat', weight: 2 }])
  assert.equal(s.mode, 'images')
  assert.equal(s.minScore, 0)
  assert.equal(s.k, PAGE_SIZE)
  assert.equal(paramsToState(new URLSearchParams('k=5000')).k, 1000)
})

test('the GET API\'s form of a link is read too: a plain q is a text term, minScore the threshold', { timeout: TIMEOUT.unit }, () => {
  const s = paramsToState(new URLSearchParams('q=pizza&q=x:not a kind&k=5&minScore=0.25'))
  assert.deepEqual(s.terms, [{ kind: 'text', text: 'pizza', weight: 1 }, { kind: 'text', text: 'x:not a kind', weight: 1 }])
  assert.equal(s.k, 5)
  assert.equal(s.minScore, 0.25)
  // and it is written back in the page's own form
  assert.equal(stateToParams(s).params.toString(), 'q=t%3Apizza&q=t%3Ax%3Anot+a+kind&min=0.25&k=5')
})

test('the filter travels as the GET API\'s `filter` parameter, and text that is not a JSON object is named before any request', { timeout: TIMEOUT.unit }, () => {
  const s = paramsToState(new URLSearchParams('q=cat&filter=%7B%22album%22%3A%22x%22%7D'))
  assert.equal(s.filter, '{"album":"x"}')
  assert.deepEqual(parseFilterText(s.filter), { album: 'x' })
  assert.equal(parseFilterText('  '), undefined)
  assert.match(parseFilterText('{album: x}') as string, /not valid JSON/)
  assert.match(parseFilterText('["x"]') as string, /must be a JSON object/)
})
