/**
 * The test command: type-check, then every test/**\/*.test.ts under node:test with tsx.
 * Node 20's --test does not expand globs or pick up .ts files, hence this small runner.
 * Usage: npm test [-- <path filter>...]
 */
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import path from 'node:path'

function findTests (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name)
    if (statSync(full).isDirectory()) return name === 'fixtures' ? [] : findTests(full)
    return name.endsWith('.test.ts') ? [full] : []
  })
}

const filters = process.argv.slice(2)
const files = findTests('test').filter((f) => filters.length === 0 || filters.some((x) => f.includes(x))).sort()
if (files.length === 0) {
  console.error('no test files matched')
  process.exit(1)
}
if (filters.length === 0) {
  const tsc = spawnSync('npx', ['tsc', '--noEmit', '-p', '.'], { stdio: 'inherit' })
  if (tsc.status !== 0) process.exit(tsc.status ?? 1)
}
const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=900000', '--test-reporter=spec', ...files], { stdio: 'inherit' })
process.exit(run.status ?? 1)
