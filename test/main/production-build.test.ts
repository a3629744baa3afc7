/**
 * The Dockerfile's build steps, outside Docker (no engine runs here): the working tree copied to a
 * temp folder, its dependencies as installed (a hard-linked copy of node_modules stands in for
 * `npm ci`, which would need the registry), then `npm run typecheck`, `npm run build` and
 * `npm prune --omit=dev` as the image runs them, and a start of the built entry with production
 * dependencies only: it must index, search and serve the page, with no tsx, esbuild or
 * TypeScript anywhere in reach.
 */
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { ENTRIES, startServer } from '../helpers/spawn-server.js'
import { TIMEOUT } from '../helpers/timeouts.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DEV_ONLY = ['tsx', 'esbuild', 'typescript', 'eslint', 'dependency-cruiser']

/** Runs a Dockerfile step in `cwd`; fails the test with its output when it fails. */
function step (cwd: string, cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_offline: 'true' } })
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`)
}

describe('the production image, built as the Dockerfile builds it', { timeout: TIMEOUT.browser }, () => {
  const scratch = mkdtempSync(path.join(tmpdir(), 'align-image-'))
  const app = path.join(scratch, 'app')
  after(() => { rmSync(scratch, { recursive: true, force: true }) })

  it('compiles, prunes the dev dependencies, and serves a search and the page from dist/', async () => {
    // COPY . . — what git tracks or would track, as it is in the working tree
    const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter((f) => f !== '' && existsSync(path.join(ROOT, f)))
    for (const f of files) {
      mkdirSync(path.dirname(path.join(app, f)), { recursive: true })
      copyFileSync(path.join(ROOT, f), path.join(app, f))
    }
    // npm ci's result: hard links cost no space, and prune only unlinks them, leaving the originals
    // the real folder, never a symlink to it (a worktree may link node_modules): prune must not reach the original
    const installed = realpathSync(path.join(ROOT, 'node_modules'))
    execFileSync('cp', ['-al', installed, path.join(app, 'node_modules')])
    assert.ok(!lstatSync(path.join(app, 'node_modules')).isSymbolicLink())
    // the one file npm rewrites in place: a copy, so the checkout's own is never touched
    const lock = path.join(app, 'node_modules/.package-lock.json')
    if (existsSync(lock)) { rmSync(lock); copyFileSync(path.join(installed, '.package-lock.json'), lock) }

    step(app, 'npm', ['run', 'typecheck'])
    step(app, 'npm', ['run', 'build'])
    step(app, 'npm', ['prune', '--omit=dev', '--no-audit', '--no-fund'])
    for (const dep of DEV_ONLY) assert.equal(existsSync(path.join(app, 'node_modules', dep)), false, `${dep} is still installed after the prune`)
    for (const dep of DEV_ONLY) assert.ok(existsSync(path.join(ROOT, 'node_modules', dep)), `the prune removed ${dep} from the checkout's own node_modules`)
    assert.ok(existsSync(path.join(app, ENTRIES.server)) && existsSync(path.join(app, 'web/dist/index.html')))

    // CMD ["node", "--enable-source-maps", "dist/main/server.js"]
    const server = await startServer({
      DATA_DIR: path.join(scratch, 'data'),
      IMPORT_DIR: path.join(scratch, 'import'),
      DEMO_POOL: '',
      LOG_LEVEL: 'warn'
    }, { cwd: app, timeoutMs: TIMEOUT.model })
    try {
      const form = new FormData()
      for (const name of ['twemoji-cat-face', 'twemoji-automobile', 'twemoji-pizza']) {
        form.append('id', name)
        form.append('file', new Blob([readFileSync(path.join(app, 'demo/pool', `${name}.png`))], { type: 'image/png' }), `${name}.png`)
      }
      const added = await fetch(`${server.url}/v1/images`, { method: 'POST', body: form })
      assert.equal(added.status, 200, await added.clone().text())
      const hits = await (await fetch(`${server.url}/v1/search?q=${encodeURIComponent('pizza')}&k=3`)).json() as { results: Array<{ id: string }> }
      assert.equal(hits.results[0]?.id, 'twemoji-pizza')
      const page = await fetch(`${server.url}/`)
      assert.equal(page.status, 200)
      assert.match(await page.text(), /<script type="module" src="app.js">/)
      assert.equal((await fetch(`${server.url}/app.js`)).status, 200)
      const cmdline = readFileSync(`/proc/${server.child.pid!}/cmdline`, 'utf8').split('\0')
      assert.ok(cmdline.includes(ENTRIES.server) && !cmdline.some((a) => a.includes('tsx')), `unexpected command line: ${cmdline.join(' ')}`)
    } finally {
      await server.stop()
    }
  })
})
