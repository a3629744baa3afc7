/**
 * The install is quiet and honest: npm prints no warning for this project, every locked package
 * supports the oldest Node that package.json's `engines` admits, and the README names exactly the
 * packages `allowScripts` lets run (or stops from running) install scripts.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import semver from 'semver'
import { TIMEOUT } from '../helpers/timeouts.js'

interface LockEntry { version?: string, engines?: Record<string, string> | string[], optional?: boolean }
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string }, allowScripts: Record<string, boolean> }
const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as { packages: Record<string, LockEntry> }

describe('npm install', { timeout: TIMEOUT.model }, () => {
  it('prints no warning (no unknown project config, no EBADENGINE)', () => {
    // a dry run from the lockfile and the cache: it reads the project's config and checks engines, and changes nothing
    const both = execFileSync('sh', ['-c', 'npm install --dry-run --offline --ignore-scripts --no-audit --no-fund 2>&1 || true'], { encoding: 'utf8' })
    const warnings = both.split('\n').filter((l) => /^npm (warn|WARN|ERR)/.test(l))
    assert.deepEqual(warnings, [], `npm warned:\n${both}`)
  })

  it('locks only packages that run on the oldest Node package.json admits', () => {
    const oldest = semver.minVersion(pkg.engines.node)
    assert.ok(oldest !== null, `engines.node "${pkg.engines.node}" has no lowest version`)
    const refused: string[] = []
    for (const [where, entry] of Object.entries(lock.packages)) {
      if (where === '' || entry.engines === undefined || Array.isArray(entry.engines)) continue
      const range = entry.engines.node
      if (range === undefined) continue
      if (!semver.satisfies(oldest, range)) refused.push(`${where.replace(/^.*node_modules\//, '')}@${entry.version ?? '?'} needs node ${range}`)
    }
    assert.deepEqual(refused, [], `package.json says node ${pkg.engines.node}, but:\n${refused.join('\n')}`)
  })

  it('the README lists exactly the install scripts allowScripts allows and denies', () => {
    const readme = readFileSync('README.md', 'utf8')
    const names = (label: string): string[] => {
      const line = readme.split('\n').find((l) => l.startsWith(`- ${label}:`))
      assert.ok(line !== undefined, `README has no "- ${label}:" line under its install notes`)
      return [...line.matchAll(/`([^`]+)`/g)].map((m) => m[1]!).sort()
    }
    const byValue = (v: boolean): string[] => Object.entries(pkg.allowScripts).filter(([, x]) => x === v).map(([k]) => k).sort()
    assert.deepEqual(names('allowed'), byValue(true))
    assert.deepEqual(names('denied'), byValue(false))
  })
})
