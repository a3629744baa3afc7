/**
 * Process roles without a database: `npm run worker` and an API-only `npm start` refuse the
 * embedded SQLite backend, saying that they need DATABASE_URL, instead of starting and idling.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, it } from 'node:test'
import { ENTRIES } from '../helpers/spawn-server.js'
import { TIMEOUT } from '../helpers/timeouts.js'
import { tempDirs } from '../reliability/support/servers.js'

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

function run (entry: string, env: Record<string, string>): { status: number | null, output: string } {
  const dirs = tempDirs('align-roles-')
  try {
    const r = spawnSync(process.execPath, [entry], {
      cwd: REPO_ROOT,
      env: { ...process.env, DATABASE_URL: '', DATA_DIR: dirs.dataDir, IMPORT_DIR: dirs.importDir, DEMO_POOL: '', ...env },
      encoding: 'utf8',
      timeout: 60_000
    })
    return { status: r.status, output: `${r.stdout}${r.stderr}` }
  } finally {
    dirs.remove()
  }
}

describe('process roles with the embedded SQLite backend', { timeout: TIMEOUT.model }, () => {
  it('npm run worker refuses: it needs DATABASE_URL', () => {
    const r = run(ENTRIES.worker, { WORKER_PORT: '' })
    assert.equal(r.status, 78, r.output)
    assert.match(r.output, /npm run worker needs DATABASE_URL/)
  })

  it('npm start with INDEX_WORKER=off refuses: nobody else could run its jobs', () => {
    const r = run(ENTRIES.server, { INDEX_WORKER: 'off', PORT: '0' })
    assert.equal(r.status, 78, r.output)
    assert.match(r.output, /INDEX_WORKER=off needs DATABASE_URL/)
  })
})
