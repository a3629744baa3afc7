import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { MALLOC_MMAP_THRESHOLD, withMallocTuning } from '../../src/ml/malloc-env.js'

test('the malloc tuning is added to an environment, and a value the user chose is kept', () => {
  assert.equal(withMallocTuning({ PATH: '/bin' }).MALLOC_MMAP_THRESHOLD_, MALLOC_MMAP_THRESHOLD)
  assert.equal(withMallocTuning({ PATH: '/bin' }).PATH, '/bin')
  assert.equal(withMallocTuning({ MALLOC_MMAP_THRESHOLD_: '4194304' }).MALLOC_MMAP_THRESHOLD_, '4194304')
})

test('every process that loads a model starts with the same tuning: npm start, worker, index, bench and the Docker image', () => {
  const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts
  for (const name of ['start', 'worker', 'index', 'bench']) {
    assert.ok(scripts[name]?.includes(`MALLOC_MMAP_THRESHOLD_=\${MALLOC_MMAP_THRESHOLD_:-${MALLOC_MMAP_THRESHOLD}}`), `npm run ${name} does not set it: ${scripts[name]}`)
  }
  assert.match(readFileSync('Dockerfile', 'utf8'), new RegExp(`^\\s+MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD} \\\\$`, 'm'))
})
