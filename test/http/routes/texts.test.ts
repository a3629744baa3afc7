import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildTestApp, errorBody, json } from '../../helpers/build-app.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

describe('/v1/texts', { timeout: TIMEOUT.unit }, () => {
  it('indexes texts and reports duplicates', async (t) => {
    const { app, services } = await buildTestApp(t)
    const res = await app.inject({ method: 'POST', url: '/v1/texts', payload: { texts: [{ id: 'cat', text: 'a cat', metadata: { lang: 'en' } }, { text: 'a dog' }, { text: 'a cat' }] } })
    assert.equal(res.statusCode, 200)
    const { items } = json(res)
    assert.deepEqual(items.map((i: any) => i.status), ['indexed', 'indexed', 'duplicate'])
    assert.equal(items[0].id, 'cat')
    assert.equal(items[2].id, 'cat')
    assert.deepEqual(services.texts.get('cat')?.metadata, { lang: 'en' })
  })

  it('refuses bad texts, naming the field', async (t) => {
    const { app } = await buildTestApp(t)
    const cases: Array<[unknown, string]> = [
      [{ texts: [{ text: 'x'.repeat(100_000) }] }, 'body/texts/0/text must NOT have more than 2000 characters'],
      [{ texts: [{ text: 'ok' }, { text: '' }] }, 'body/texts/1/text must NOT have fewer than 1 characters'],
      [{ texts: [] }, 'body/texts must NOT have fewer than 1 items'],
      [{ texts: ['a cat'] }, 'body/texts/0 must be object'],
      [{ texts: [{ text: 'a', metadata: 'x' }] }, 'body/texts/0/metadata must be object'],
      [{ text: 'a cat' }, "body must have required property 'texts'; expected fields: texts (required), template"]
    ]
    for (const [payload, message] of cases) {
      const res = await app.inject({ method: 'POST', url: '/v1/texts', payload: payload as object })
      assert.equal(res.statusCode, 400)
      assert.equal(errorBody(res).message, message)
    }
  })

  it('deletes a text; an unknown id is 404', async (t) => {
    const { app, services } = await buildTestApp(t)
    await services.addTexts([{ id: 'a', text: 'a' }])
    let res = await app.inject({ method: 'DELETE', url: '/v1/texts/a' })
    assert.equal(res.statusCode, 204)
    res = await app.inject({ method: 'DELETE', url: '/v1/texts/a' })
    assert.equal(res.statusCode, 404)
    assert.equal(errorBody(res).message, 'text "a" not found')
  })
})
