/**
 * `npm run backup` through a running server in the middle of an index job, then `npm run restore`
 * into a fresh DATA_DIR: the restored server holds the backup's images, answers the same top-10 as
 * the original held at backup time, and its job says where it stopped. Built entries (dist/).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, it } from 'node:test'
import { readManifest } from '../../../src/backends/sqlite/backup/index.js'
import { distinctImage } from '../../reliability/support/images.js'
import { serviceEnv, spawnService, tempDirs } from '../../reliability/support/servers.js'
import { TIMEOUT } from '../../helpers/timeouts.js'

const run = promisify(execFile)
const dirs = tempDirs('align-backup-')
after(() => { dirs.remove() })
const N = 240

interface Job { status: string, done: number, failed: number, total: number }

it('a backup taken mid-job through the running server restores to the same count and the same top-10', { timeout: TIMEOUT.server * 2 }, async () => {
  await mkdir(path.join(dirs.importDir, 'pool'))
  for (let i = 0; i < N; i++) await writeFile(path.join(dirs.importDir, 'pool', `img-${String(i).padStart(3, '0')}.png`), await distinctImage(i))
  // exact search on both sides (ef ≥ N), so top-10 compares the rows, not two graphs' approximations
  const env = serviceEnv(dirs, { INDEX_BATCH_SIZE: '4', HNSW_EF_SEARCH: '1000' })
  const original = await spawnService(env)
  try {
    const { jobId } = (await original.api.post('/v1/index-jobs', { directory: 'pool', idFromPath: true })).json as { jobId: string }
    let job: Job
    do {
      await new Promise((resolve) => setTimeout(resolve, 50))
      job = (await original.api.get(`/v1/index-jobs/${jobId}`)).json as Job
    } while (job.done < 24 && job.status !== 'done')
    const doneBefore = job.done
    const file = path.join(dirs.root, 'mid-job.tar')
    const backup = await run(process.execPath, ['dist/main/cli/backup.js', file, '--url', original.server.url], { env: { ...process.env, ...env } })
    assert.match(backup.stderr, /in use by .*asking it/, 'the running server wrote it')
    await original.api.del(`/v1/index-jobs/${jobId}`)
    const manifest = await readManifest(file)
    const atBackup = manifest.unfinishedJobs.find((j) => j.id === jobId)
    assert.ok(atBackup !== undefined && atBackup.done < N, `the backup was taken mid-job (${atBackup?.done}/${N})`)
    assert.ok(manifest.images >= doneBefore, `it holds the ${doneBefore} images acknowledged before it began (${manifest.images})`)

    // restore into a fresh DATA_DIR; the import folder moves away, so the resumed job cannot add to it before we compare
    const restoredDir = path.join(dirs.root, 'restored-data')
    const restore = await run(process.execPath, ['dist/main/cli/restore.js', file, '--data-dir', restoredDir], { env: { ...process.env, ...env } })
    assert.match(restore.stdout, new RegExp(`restored ${manifest.images} images`))
    assert.match(restore.stdout, new RegExp(`index job ${jobId} \\(directory\\) stopped at ${atBackup.done + atBackup.failed}/${N} items`))
    const refused = await run(process.execPath, ['dist/main/cli/restore.js', file, '--data-dir', restoredDir], { env: { ...process.env, ...env } }).then(() => undefined, (err: { code: number, stderr: string }) => err)
    assert.equal(refused?.code, 1)
    assert.match(refused.stderr, /restore refused: .* is not empty/)
    await rename(path.join(dirs.importDir, 'pool'), path.join(dirs.root, 'pool-moved'))

    // the original at backup time held exactly the backup's images: remove what it indexed after
    const all = async (api: typeof original.api): Promise<string[]> => (await api.hits({ query: [{ text: 'a picture' }], k: 1000 })).map((h) => h.id).sort()
    const restored = await spawnService({ ...env, DATA_DIR: restoredDir })
    try {
      const kept = await all(restored.api)
      assert.equal(kept.length, manifest.images)
      assert.equal((await restored.api.counts()).images, manifest.images)
      for (const id of await all(original.api)) if (!kept.includes(id)) assert.equal((await original.api.del(`/v1/images/${id}`)).status, 204)
      const queries = [
        ...['a red circle', 'blue', 'stripes', 'green square'].map((text) => ({ query: [{ text }], k: 10 })),
        ...kept.slice(0, 6).map((imageId) => ({ query: [{ imageId }], k: 10 }))
      ]
      for (const q of queries) {
        const want = (await original.api.hits(q)).map((h) => h.id)
        assert.equal(want.length, 10)
        assert.deepEqual((await restored.api.hits(q)).map((h) => h.id), want, JSON.stringify(q))
      }
      const resumed = (await restored.api.get(`/v1/index-jobs/${jobId}`)).json as Job
      assert.ok(resumed.done >= atBackup.done, 'the restored job kept its progress')
    } finally { await restored.server.stop() }
  } finally { await original.server.stop() }
})
