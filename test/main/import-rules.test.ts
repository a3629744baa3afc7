/**
 * The import rules (.dependency-cruiser.cjs) can fail: files that break each rule are planted in a
 * temporary place inside src/ and bench/, and the checker must name every one of them. A rule that
 * no test can break is only a wish.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { TIMEOUT } from '../helpers/timeouts.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const TAG = `planted-${process.pid}`

/** file (relative to the root) → its one import, and the rule it must break */
const PLANTS: Array<{ file: string, imports: string, rule: string }> = [
  { file: `src/ml/${TAG}.ts`, imports: '../http/app.js', rule: 'ml-imports-only-core' },
  { file: `src/core/${TAG}.ts`, imports: '../ml/encoder.js', rule: 'core-is-the-bottom' },
  { file: `src/services/${TAG}.ts`, imports: '../backends/sqlite/open-sqlite-backend.js', rule: 'use-cases-see-only-ports' },
  { file: `src/jobs/${TAG}.ts`, imports: '../http/app.js', rule: 'use-cases-see-only-ports' },
  { file: `src/backends/sqlite/${TAG}.ts`, imports: '../../services/search.js', rule: 'backends-never-reach-up' },
  { file: `src/backends/postgres/${TAG}.ts`, imports: '../sqlite/hnsw/index.js', rule: 'adapters-are-siblings' },
  { file: `src/http/${TAG}.ts`, imports: '../backends/postgres/pg-pool.js', rule: 'only-main-wires-adapters' },
  { file: `src/http/${TAG}-main.ts`, imports: '../main/config/config.js', rule: 'http-does-not-import-the-process' },
  { file: `src/services/${TAG}-test.ts`, imports: '../../test/helpers/timeouts.js', rule: 'src-stands-alone' },
  { file: `bench/${TAG}.ts`, imports: '../test/helpers/timeouts.js', rule: 'bench-does-not-import-tests' }
]

test('every import rule fails on a file that breaks it, and names the file', { timeout: TIMEOUT.server }, (t) => {
  const cycleDir = path.join(ROOT, 'src/core', `${TAG}-cycle`)
  t.after(() => {
    for (const p of PLANTS) rmSync(path.join(ROOT, p.file), { force: true })
    rmSync(cycleDir, { recursive: true, force: true })
  })
  for (const p of PLANTS) writeFileSync(path.join(ROOT, p.file), `export * from '${p.imports}'\n`)
  // two files that import each other
  mkdirSync(cycleDir)
  writeFileSync(path.join(cycleDir, 'a.ts'), "import { b } from './b.js'\nexport const a = (): number => b() + 1\n")
  writeFileSync(path.join(cycleDir, 'b.ts'), "import { a } from './a.js'\nexport const b = (): number => a() - 1\n")

  // the same command as `npm run lint:imports`, whose exit status fails `npm test`
  const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs'),
    'src', 'bench', '--config', '.dependency-cruiser.cjs'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 })
  assert.notEqual(r.status, 0, 'the checker passed a tree with planted violations')
  // lines like "  error ml-imports-only-core: src/ml/x.ts → src/http/app.ts"
  const found = [...r.stdout.matchAll(/^\s*error (\S+): (\S+) →\s?(.*)$/gm)].map((m) => ({ rule: m[1]!, from: m[2]!, to: m[3]! }))
  for (const p of PLANTS) {
    assert.ok(found.some((v) => v.from === p.file && v.rule === p.rule), `${p.file} → ${p.imports} was not reported as ${p.rule}:\n${r.stdout}`)
  }
  assert.ok(found.some((v) => v.rule === 'no-cycles-in-src' && v.from.startsWith(`src/core/${TAG}-cycle/`)), `the planted cycle was not reported:\n${r.stdout}`)
  // and nothing but the plants: the committed tree itself is clean
  assert.deepEqual(found.filter((v) => !v.from.includes(TAG) && !v.to.includes(TAG)), [], 'violations outside the planted files')
})
