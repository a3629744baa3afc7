/** A folder holding the first `n` images of the demo pool and their manifest lines (labels), for tests that need a small real pool. */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const POOL = fileURLToPath(new URL('../../demo/pool/', import.meta.url))

export function demoSubset (dir: string, n: number): string[] {
  mkdirSync(dir, { recursive: true })
  const lines = readFileSync(path.join(POOL, 'manifest.jsonl'), 'utf8').split('\n').filter((l) => l.trim() !== '').slice(0, n)
  const files = lines.map((l) => (JSON.parse(l) as { file: string }).file)
  for (const f of files) copyFileSync(path.join(POOL, f), path.join(dir, f))
  writeFileSync(path.join(dir, 'manifest.jsonl'), lines.join('\n') + '\n')
  return files
}
