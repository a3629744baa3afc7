import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import { errorBody, json } from '../../helpers/build-app.js'
import { makeImage } from '../../helpers/fake-encoder.js'
import { buildRealApp, type RealApp } from '../../helpers/real-services-app.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

/** creates `count` jobs over one file through the API; returns their ids in creation order */
async function createJobs ({ app, config }: RealApp, count: number): Promise<string[]> {
  writeFileSync(path.join(config.importDir, 'one.png'), await makeImage(1))
  const ids: string[] = []
  for (let i = 0; i < count; i++) {
    const res = await app.inject({ method: 'POST', url: '/v1/index-jobs', payload: { items: [{ path: 'one.png' }] } })
    assert.equal(res.statusCode, 202, res.body)
    ids.push(json(res).jobId)
  }
  return ids
}

async function page (app: RealApp['app'], query: string): Promise<{ jobs: Array<{ id: string, status: string }>, next: string | null }> {
  const res = await app.inject({ method: 'GET', url: `/v1/index-jobs${query}` })
  assert.equal(res.statusCode, 200, res.body)
  return json(res)
}

describe('GET /v1/index-jobs', { timeout: TIMEOUT.unit }, () => {
  it('pages through every job, newest first, each once; next is null on the last page', async (t) => {
    const real = await buildRealApp(t)
    const created = await createJobs(real, 5)
    const seen: string[] = []
    const sizes: number[] = []
    let cursor: string | null = null
    do {
      const p = await page(real.app, `?limit=2${cursor === null ? '' : `&before=${cursor}`}`)
      sizes.push(p.jobs.length)
      seen.push(...p.jobs.map((j) => j.id))
      if (p.next !== null) assert.equal(p.next, p.jobs.at(-1)!.id, 'next is the last job of the page')
      cursor = p.next
    } while (cursor !== null && sizes.length < 10)
    assert.deepEqual(sizes, [2, 2, 1])
    assert.deepEqual(seen, [...created].reverse())
  })

  it('says there is no further page when the last page is exactly full', async (t) => {
    const real = await buildRealApp(t)
    const created = await createJobs(real, 4)
    const first = await page(real.app, '?limit=2')
    const second = await page(real.app, `?limit=2&before=${first.next!}`)
    assert.deepEqual(second.jobs.map((j) => j.id), [created[1], created[0]])
    assert.equal(second.next, null)
  })

  it('answers 20 jobs when no limit is given', async (t) => {
    const real = await buildRealApp(t)
    const created = await createJobs(real, 22)
    const first = await page(real.app, '')
    assert.equal(first.jobs.length, 20)
    const rest = await page(real.app, `?before=${first.next!}`)
    assert.deepEqual(rest.jobs.map((j) => j.id), [created[1], created[0]])
    assert.equal(rest.next, null)
  })

  it('refuses a limit outside 1–100 in the error shape, and an unknown cursor is an empty page', async (t) => {
    const real = await buildRealApp(t)
    await createJobs(real, 1)
    for (const limit of ['0', '101', 'ten']) {
      const res = await real.app.inject({ method: 'GET', url: `/v1/index-jobs?limit=${limit}` })
      assert.equal(res.statusCode, 400, limit)
      assert.match(errorBody(res).message, /limit/)
    }
    assert.equal((await page(real.app, '?limit=100')).jobs.length, 1)
    assert.deepEqual(await page(real.app, '?before=no-such-job'), { jobs: [], next: null })
  })
})
