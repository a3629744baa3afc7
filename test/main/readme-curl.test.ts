/**
 * The README's curl examples, run as written against the built server, so the README cannot drift
 * from the API: every command in a ```sh block that holds a curl (and every inline `curl …` span) runs
 * with `curl -f` (an error answer fails it, exit 22). Only the host and port, `$API` and `<jobId>` (the
 * id the previous job request answered) are substituted. A line that cannot run here (it reads the
 * user's home folder) is skipped and listed, with a stand-in so the commands after it still mean
 * something; ```sh blocks without a curl (npm, docker, python) are not examples of the API and are listed.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { ENTRIES, startServer, type RunningServer } from '../helpers/spawn-server.js'
import { TIMEOUT } from '../helpers/timeouts.js'

const REPO = path.resolve('.')
const README = path.join(REPO, 'README.md')
const DEMO = path.join(REPO, 'demo/pool')
/** The README's examples name these demo images (and its arithmetic example their skin-tone variants). */
const DEMO_FILES = ['twemoji-cat-face.png', 'twemoji-cat.png', 'twemoji-waving-hand.png',
  'twemoji-waving-hand-dark-skin-tone.png', 'twemoji-waving-hand-light-skin-tone.png', 'twemoji-red-heart.png']
/** Folders the job examples name under IMPORT_DIR; the test fills them with demo images as stand-ins. */
const IMPORT_FOLDERS = ['holiday-2024', 'photos']
/** The model the switch example names is not shipped: a small model of another dimension stands in for it. */
const SWITCH_STAND_IN = { name: 'align-base', dir: path.join(REPO, 'test/fixtures/align-tiny') }
/** Fewer curl commands than this means the parser lost some. */
const MIN_CURLS = 20

export interface Example { command: string, inline: boolean }
export interface Skipped { command: string, why: string }

/** Joins backslash-continued lines and lines inside an open single quote (a JSON body over two lines), and drops comment lines. */
function commandsOf (block: string): string[] {
  const lines = block.replace(/\\\n\s*/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  const out: string[] = []
  let open = ''
  for (const line of lines) {
    const joined = open === '' ? line : `${open}\n${line}`
    if ((joined.match(/'/g)?.length ?? 0) % 2 === 1) { open = joined; continue }
    out.push(joined)
    open = ''
  }
  if (open !== '') out.push(open)
  return out
}

/** The README's curl examples in order (```sh blocks first, then inline spans), and what is left out. */
export function readmeExamples (markdown: string): { examples: Example[], skipped: Skipped[] } {
  const examples: Example[] = []
  const skipped: Skipped[] = []
  for (const m of markdown.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const commands = commandsOf(m[1] ?? '')
    if (!commands.some((c) => /(^|\s)curl\s/.test(c))) {
      for (const command of commands) skipped.push({ command, why: 'not a curl example (no curl in its block)' })
      continue
    }
    for (const command of commands) {
      // a chain runs part by part, so only the part that reads the home folder is skipped
      for (const part of command.split(/\s*&&\s*/)) {
        if (/^npm /.test(part)) skipped.push({ command: part, why: 'not a curl example (an npm script beside them)' })
        else if (/(^|\s)~\//.test(part)) skipped.push({ command: part, why: 'reads the home folder of whoever runs it' })
        else examples.push({ command: part, inline: false })
      }
    }
  }
  const prose = markdown.replace(/```[\s\S]*?```/g, '')
  for (const m of prose.matchAll(/`(curl [^`]+)`/g)) examples.push({ command: m[1] ?? '', inline: true })
  return { examples, skipped }
}

/** The command as it runs here: `curl -f`, this server's address, the last job id and backup name. */
function substitute (command: string, base: string, jobId: string | undefined, backupName?: string): string {
  let c = command
    .replace(/(https?:\/\/)?localhost:8080/g, base)
    .replace(/\$API\b/g, base)
    .replace(/^curl /, 'curl -fS ')
  if (c.includes('<jobId>')) {
    assert.ok(jobId !== undefined, `no job id to substitute yet: ${command}`)
    c = c.replaceAll('<jobId>', jobId)
  }
  if (c.includes('<name>')) {
    assert.ok(backupName !== undefined, `no backup name to substitute yet: ${command}`)
    c = c.replaceAll('<name>', backupName)
  }
  return c
}

/** Waits until the switch the README started has swapped the models (the old one is the standby, ready). */
async function switchDone (base: string): Promise<void> {
  for (;;) {
    const m = await (await fetch(`${base}/v1/models`)).json() as { active: { modelId: string }, standby: { state: string } | null, running: boolean }
    if (m.standby?.state === 'ready' && !m.running) return
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

describe('the README\'s curl examples', { timeout: TIMEOUT.server }, () => {
  let tmp: string
  let server: RunningServer
  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'align-readme-curl-'))
    // the examples name demo/pool/… relative to the repository: the commands run where that resolves
    symlinkSync(path.join(REPO, 'demo'), path.join(tmp, 'demo'))
    // a small demo pool with the images the examples name, so the server is ready in seconds
    const pool = path.join(tmp, 'pool')
    mkdirSync(pool)
    const manifest = readFileSync(path.join(DEMO, 'manifest.jsonl'), 'utf8').split('\n')
    writeFileSync(path.join(pool, 'manifest.jsonl'), DEMO_FILES.map((f) => {
      const line = manifest.find((l) => l.includes(`"file":"${f}"`))
      assert.ok(line !== undefined, `${f} is not in the demo pool's manifest`)
      copyFileSync(path.join(DEMO, f), path.join(pool, f))
      return line
    }).join('\n') + '\n')
    for (const folder of IMPORT_FOLDERS) {
      mkdirSync(path.join(tmp, 'import', folder), { recursive: true })
      for (const f of DEMO_FILES.slice(0, 2)) copyFileSync(path.join(DEMO, f), path.join(tmp, 'import', folder, f))
    }
    mkdirSync(path.join(tmp, 'models'))
    symlinkSync(SWITCH_STAND_IN.dir, path.join(tmp, 'models', SWITCH_STAND_IN.name))
    server = await startServer({
      DATA_DIR: path.join(tmp, 'data'),
      MODEL_DIR: path.join(REPO, 'models/align-mini'),
      // IMPORT_DIR and MODELS_DIR left to their defaults (./import, ./models next to where the server
      // started), as the README says
      IMPORT_DIR: undefined,
      MODELS_DIR: undefined,
      DEMO_POOL: pool,
      API_KEY: '',
      API_KEY_READS: '',
      RATE_LIMIT_MAX: '',
      LOG_LEVEL: 'warn'
    }, { cwd: tmp, entry: path.join(REPO, ENTRIES.server), timeoutMs: TIMEOUT.server })
    // the demo pool is queued on the first start: wait for its job and its labels
    for (;;) {
      const info = await (await fetch(`${server.url}/v1/info`)).json() as { counts: { images: number, texts: number } }
      if (info.counts.images === DEMO_FILES.length && info.counts.texts === DEMO_FILES.length) break
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }, { timeout: TIMEOUT.server })
  after(async () => {
    await server?.stop()
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true })
  })

  test('each runs with curl -f and exits 0; only lines that cannot run here are skipped', { timeout: TIMEOUT.server }, async () => {
    const { examples, skipped } = readmeExamples(readFileSync(README, 'utf8'))
    const curls = examples.filter((e) => e.command.startsWith('curl '))
    assert.ok(curls.length >= MIN_CURLS, `only ${curls.length} curl examples found in README.md`)
    let jobId: string | undefined
    let backupName: string | undefined
    const failures: string[] = []
    for (const ex of examples) {
      // "swap back" follows a switch that has completed: a user runs it later, so the test waits
      if (ex.command.includes('/v1/models/swap')) await switchDone(server.url)
      const command = substitute(ex.command, server.url, jobId, backupName)
      if (command.startsWith('curl ')) assert.ok(command.includes(server.url), `an example that does not call the server: ${ex.command}`)
      const r = spawnSync('bash', ['-c', command], { cwd: tmp, encoding: 'utf8', timeout: 60_000 })
      if (r.status !== 0) {
        failures.push(`exit ${String(r.status)}: ${command}\n  ${(r.stderr + r.stdout).trim().slice(0, 400)}`)
        continue
      }
      try {
        const out = JSON.parse(r.stdout) as { jobId?: unknown, name?: unknown }
        if (typeof out.jobId === 'string') jobId = out.jobId
        if (typeof out.name === 'string' && /\/v1\/backups/.test(command)) backupName = out.name
      } catch { /* not every answer is JSON (mkdir, a DELETE's empty body) */ }
    }
    console.log(`README: ran ${examples.length} commands (${curls.length} curl); skipped ${skipped.length}:\n` +
      skipped.map((s) => `  - ${s.command}  (${s.why})`).join('\n'))
    assert.deepEqual(failures, [])
    // only the home-folder line is skipped among the curl blocks; the job examples saw its stand-in
    assert.deepEqual(skipped.filter((s) => !s.why.startsWith('not a curl example')).map((s) => s.command),
      ['cp ~/Pictures/holiday/*.jpg import/holiday-2024/'])
    assert.ok(jobId !== undefined, 'no example started a job')
  })
})
