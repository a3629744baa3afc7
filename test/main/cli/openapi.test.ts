import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { parse } from 'yaml'
import { OPENAPI_PATH, generateOpenApi } from '../../../src/main/cli/export-openapi.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

describe('openapi.yaml', { timeout: TIMEOUT.unit }, () => {
  it('is what `npm run openapi` generates from the route schemas', async () => {
    const fresh = await generateOpenApi()
    let committed = ''
    try { committed = readFileSync(OPENAPI_PATH, 'utf8') } catch {}
    assert.ok(committed === fresh, 'openapi.yaml is out of date: run `npm run openapi` and commit the result')
  })

  it('documents every endpoint of the contract with tags and responses', async () => {
    const doc = parse(await generateOpenApi())
    const expected: Record<string, string[]> = {
      '/v1/search': ['get', 'post'],
      '/v1/images': ['get', 'post', 'delete'],
      '/v1/images/{id}': ['get', 'delete'],
      '/v1/images/{id}/thumbnail': ['get'],
      '/v1/index-jobs': ['get', 'post'],
      '/v1/index-jobs/{id}': ['get', 'delete'],
      '/v1/index-jobs/{id}/resume': ['post'],
      '/v1/texts': ['get', 'post', 'delete'],
      '/v1/texts/{id}': ['delete'],
      '/v1/embed': ['post'],
      '/v1/classify': ['post'],
      '/v1/info': ['get'],
      '/v1/backups': ['get', 'post'],
      '/v1/backups/{name}': ['get', 'delete'],
      '/v1/models': ['get'],
      '/v1/models/switch': ['post'],
      '/v1/models/swap': ['post'],
      '/v1/models/standby': ['delete'],
      '/health': ['get'],
      '/ready': ['get'],
      '/metrics': ['get']
    }
    assert.deepEqual(Object.keys(doc.paths).sort(), Object.keys(expected).sort())
    for (const [path, methods] of Object.entries(expected)) {
      assert.deepEqual(Object.keys(doc.paths[path]).filter((k) => k !== 'parameters').sort(), [...methods].sort(), path)
      for (const m of methods) {
        const op = doc.paths[path][m]
        assert.ok(Array.isArray(op.tags) && op.tags.length > 0, `${m} ${path} has tags`)
        assert.ok(Object.keys(op.responses).some((s) => s.startsWith('2')), `${m} ${path} documents its success response`)
      }
    }
    // both request forms of the dual endpoints are documented
    for (const path of ['/v1/search', '/v1/index-jobs', '/v1/classify']) {
      assert.deepEqual(Object.keys(doc.paths[path].post.requestBody.content).sort(), ['application/json', 'multipart/form-data'], path)
    }
    assert.ok(doc.components.schemas.Error)
  })

  it('has no description that Swagger UI would read as HTML (an angle bracket outside a `code span`)', async () => {
    const doc = parse(await generateOpenApi()) as unknown
    const bad: string[] = []
    const walk = (node: unknown, at: string): void => {
      if (Array.isArray(node)) { node.forEach((v, i) => { walk(v, `${at}/${i}`) }); return }
      if (typeof node !== 'object' || node === null) return
      for (const [key, value] of Object.entries(node)) {
        // Swagger renders descriptions as Markdown: "<part name>" outside backticks is an HTML tag that swallows the rest
        if ((key === 'description' || key === 'summary') && typeof value === 'string' && /<[A-Za-z/!]/.test(value.replace(/`[^`]*`/g, ''))) bad.push(`${at}/${key}: ${value}`)
        else walk(value, `${at}/${key}`)
      }
    }
    walk(doc, '')
    assert.deepEqual(bad, [])
  })
})
