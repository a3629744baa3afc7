/**
 * The backup use case: the schedule writes scheduled backups and keeps only the newest `keep` of
 * them (never removing one made on request); a backend without backups answers 501 naming pg_dump.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import pino from 'pino'
import { openSqliteBackend } from '../../src/backends/sqlite/open-sqlite-backend.js'
import { openBackupService } from '../../src/services/backups.js'
import type { Backend } from '../../src/backends/ports.js'
import { TIMEOUT } from '../helpers/timeouts.js'
import { DIM, Pool } from '../helpers/vectors.js'

const root = await mkdtemp(path.join(tmpdir(), 'backup-service-'))
after(async () => { await rm(root, { recursive: true, force: true }) })
const silent = pino({ level: process.env.TEST_LOG ?? 'silent' })

describe('openBackupService', { timeout: TIMEOUT.unit * 2 }, () => {
  it('on a schedule, keeps the newest `keep` scheduled backups and every backup made on request', async () => {
    const backend = await openSqliteBackend({ dataDir: path.join(root, 'data') }, { modelId: 'm', dim: DIM })
    await backend.images.add(new Pool(50, 4, 1).rows)
    const onRequest = await backend.backups.create()
    // count the schedule's backups: after each it prunes the scheduled ones past `keep`
    const create = backend.backups.create.bind(backend.backups)
    const runs = { written: 0 }
    backend.backups.create = async (opts) => { const info = await create(opts); if (opts?.scheduled === true) runs.written++; return info }
    const service = openBackupService(backend, silent, { everyMs: 30, keep: 2 })
    try {
      const until = Date.now() + TIMEOUT.unit
      while (runs.written < 4 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20))
      assert.ok(runs.written >= 4, `the schedule wrote ${runs.written} backups`)
      await service.close()
      const list = await backend.backups.list()
      const scheduled = list.filter((b) => b.scheduled)
      assert.equal(scheduled.length, 2, `kept 2 scheduled backups: ${list.map((b) => b.name).join(', ')}`)
      assert.ok(scheduled.every((b) => b.images === 50 && b.name.endsWith('-scheduled.tar')))
      assert.ok(list.some((b) => b.name === onRequest.name), 'the backup made on request stays')
    } finally {
      await service.close()
      await backend.close()
    }
  })

  it('answers 501 NOT_IMPLEMENTED naming pg_dump where the backend has no backups', async () => {
    const backend = { name: 'postgres' } as unknown as Backend
    const service = openBackupService(backend, silent, { keep: 7 })
    await assert.rejects(service.create(), (err: Error & { statusCode?: number, code?: string }) => {
      assert.equal(err.statusCode, 501)
      assert.equal(err.code, 'NOT_IMPLEMENTED')
      assert.match(err.message, /pg_dump/)
      return true
    })
  })
})
