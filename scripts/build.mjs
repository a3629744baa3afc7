/**
 * `npm run build`: src/ → dist/ (tsc, with source maps), the PostgreSQL migrations beside the
 * compiled migrator, and the web page into web/dist. `--if-stale` builds only when dist/ is missing
 * or older than what it is built from, so `npm start` on a fresh clone builds once and later starts
 * pay nothing. Plain JavaScript: it runs before anything is compiled.
 */
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const DIST = path.join(ROOT, 'dist')
/** written last: its mtime is when the build finished, and its absence means the build did not */
export const STAMP = path.join(DIST, '.build-stamp')
const INPUTS = ['src', 'web/src', 'web/index.html', 'web/build.ts', 'tsconfig.json', 'tsconfig.build.json', 'package.json']
const MIGRATIONS = 'backends/postgres/migrations'

function newestMtime (p) {
  if (!existsSync(p)) return 0
  const st = statSync(p)
  if (!st.isDirectory()) return st.mtimeMs
  return readdirSync(p).reduce((newest, name) => Math.max(newest, newestMtime(path.join(p, name))), st.mtimeMs)
}

/** Whether dist/ is missing or older than any of its inputs. */
export function isStale () {
  if (!existsSync(STAMP)) return true
  const built = statSync(STAMP).mtimeMs
  return INPUTS.some((p) => newestMtime(path.join(ROOT, p)) > built)
}

function run (cmd, args) {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit' })
  if (r.status !== 0) {
    console.error(`build failed: ${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}`)
    process.exit(r.status ?? 1)
  }
}

export function build () {
  const started = performance.now()
  rmSync(STAMP, { force: true })
  // a file removed from src/ must not live on in dist/
  rmSync(DIST, { recursive: true, force: true })
  run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'])
  cpSync(path.join(ROOT, 'src', MIGRATIONS), path.join(DIST, MIGRATIONS), { recursive: true })
  run(process.execPath, ['--import', 'tsx', 'web/build.ts'])
  mkdirSync(DIST, { recursive: true })
  writeFileSync(STAMP, `${new Date().toISOString()}\n`)
  console.log(`built dist/ and web/dist/ in ${Math.round(performance.now() - started)} ms`)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (!process.argv.includes('--if-stale') || isStale()) build()
}
