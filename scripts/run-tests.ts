/**
 * The test command: type-check, lint (style and the import rules), build dist/ (the process tests
 * run the compiled entries), then every test/**\/*.test.ts under node:test with tsx.
 * Node 20's --test does not expand globs or pick up .ts files, hence this small runner.
 * Every skipped test is counted and named at the end: a skip is a promise that was not checked.
 * Run as root (as CI is), a skip under test/reliability/ (the README's Guarantees) fails the run,
 * because root can mount the tmpfs that the full-disk test needs and nothing else skips there.
 * Usage: npm test [-- <path filter>...]
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

interface Skipped { file: string, name: string, reason: string }

const GUARANTEES_DIR = 'test/reliability/'

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
function mustPass (cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: 'inherit' })
  if (r.status !== 0) process.exit(r.status ?? 1)
}
if (filters.length === 0) {
  mustPass('npx', ['tsc', '--noEmit', '-p', '.'])
  mustPass('npx', ['eslint', '.'])
  mustPass('npx', ['depcruise', 'src', 'bench', '--config', '.dependency-cruiser.cjs'])
}
mustPass(process.execPath, ['scripts/build.mjs', '--if-stale'])
const scratch = mkdtempSync(path.join(tmpdir(), 'align-run-tests-'))
const skipsFile = path.join(scratch, 'skipped.jsonl')
const run = spawnSync(process.execPath, [
  '--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=900000',
  '--test-reporter=spec', '--test-reporter-destination=stdout',
  '--test-reporter=./scripts/skipped-tests-reporter.mjs', `--test-reporter-destination=${skipsFile}`,
  ...files
], { stdio: 'inherit' })
let skipped: Skipped[] = []
try {
  skipped = readFileSync(skipsFile, 'utf8').split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Skipped)
} catch { /* the run died before the reporter wrote anything: its own status says so */ }
rmSync(scratch, { recursive: true, force: true })

if (skipped.length > 0) {
  console.log(`\n${skipped.length} skipped (tests and suites; each was NOT checked):`)
  for (const s of skipped) console.log(`  - ${s.file} › ${s.name}${s.reason === '' ? '' : ` (${s.reason})`}`)
} else {
  console.log('\nnothing skipped')
}
const guaranteesSkipped = skipped.filter((s) => s.file.startsWith(GUARANTEES_DIR))
if (process.getuid?.() === 0 && guaranteesSkipped.length > 0) {
  console.error(`\nFAIL: running as root, yet ${guaranteesSkipped.length} test(s) of the README's Guarantees (${GUARANTEES_DIR}) were skipped (listed above)`)
  process.exit(run.status === 0 ? 1 : run.status ?? 1)
}
process.exit(run.status ?? 1)
