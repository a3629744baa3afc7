import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { BadRequestError } from '../../src/core/errors.js'
import { idFromPath, readJobFile, resolveJobSource, sanitizeFilename, walkImages } from '../../src/jobs/index.js'
import { idProblem } from '../../src/backends/sqlite/store/index.js'
import type { JobSource } from '../../src/services/types.js'
import { TIMEOUT } from '../helpers/timeouts.js'

const base = mkdtempSync(path.join(tmpdir(), 'job-sources-'))
const importDir = path.join(base, 'import')
const outside = path.join(base, 'outside')

before(() => {
  mkdirSync(path.join(importDir, 'cats', 'deep'), { recursive: true })
  mkdirSync(path.join(importDir, '.hidden'), { recursive: true })
  mkdirSync(outside, { recursive: true })
  for (const f of ['a.png', 'b.JPG', 'notes.txt', 'cats/c.webp', 'cats/deep/d.gif', 'cats/e.tiff', '.hidden/h.png', '.dot.png']) {
    writeFileSync(path.join(importDir, f), 'x')
  }
  writeFileSync(path.join(outside, 'secret.png'), 'secret')
  symlinkSync(path.join(outside, 'secret.png'), path.join(importDir, 'escape.png'))
  symlinkSync(outside, path.join(importDir, 'escape-dir'))
  symlinkSync(path.join(importDir, 'a.png'), path.join(importDir, 'cats', 'link-to-a.png'))
})
after(() => { rmSync(base, { recursive: true, force: true }) })

function rejects (source: unknown, field: RegExp): void {
  assert.throws(() => resolveJobSource(source as JobSource, importDir), (err: Error & { statusCode?: number }) => {
    assert.ok(err instanceof BadRequestError, `${err.name}: ${err.message}`)
    assert.equal(err.statusCode, 400)
    assert.match(err.message, field)
    return true
  })
}

describe('job sources', { timeout: TIMEOUT.unit }, () => {
  it('accepts relative files inside IMPORT_DIR and normalizes them', () => {
    const r = resolveJobSource({ items: [{ path: 'a.png', id: 'a', metadata: { k: 1 } }, { path: './cats/../cats/c.webp' }, { path: 'cats/link-to-a.png' }] }, importDir)
    assert.equal(r.kind, 'items')
    assert.deepEqual(r.kind === 'items' && r.items, [{ path: 'a.png', id: 'a', metadata: { k: 1 } }, { path: 'cats/c.webp' }, { path: 'cats/link-to-a.png' }])
  })

  it('rejects absolute paths, .. escapes and symlinks that leave IMPORT_DIR, naming the field', () => {
    const ok = { path: 'a.png' }
    rejects({ items: [ok, ok, ok, { path: '/etc/passwd' }] }, /^items\[3\]\.path must be relative to IMPORT_DIR/)
    rejects({ items: [{ path: '../outside/secret.png' }] }, /^items\[0\]\.path escapes IMPORT_DIR/)
    rejects({ items: [ok, { path: 'cats/../../outside/secret.png' }] }, /^items\[1\]\.path escapes/)
    rejects({ items: [{ path: 'escape.png' }] }, /^items\[0\]\.path is a symlink that leaves IMPORT_DIR/)
    rejects({ items: [{ path: 'escape-dir/secret.png' }] }, /^items\[0\]\.path is a symlink that leaves/)
    rejects({ items: [{ path: 'C:\\Windows\\win.ini' }] }, /^items\[0\]\.path must be relative/)
    rejects({ items: [{ path: 'missing.png' }] }, /^items\[0\]\.path: no such file/)
    // the message says where IMPORT_DIR is, so a newcomer knows where to create the folder
    const real = realpathSync(importDir)
    const expected = `directory: no such directory under IMPORT_DIR ("holiday-2024"); IMPORT_DIR is ${real}, so create ${path.join(real, 'holiday-2024')} first`
    rejects({ directory: 'holiday-2024' }, new RegExp(`^${expected.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`))
    rejects({ items: [{ path: 'cats' }] }, /^items\[0\]\.path is not a file/)
    rejects({ items: [{ path: 'a.png', id: 'bad id!' }] }, /^items\[0\]\.id may only contain/)
    rejects({ items: [{ path: 'a.png', id: 'x' }, { path: 'b.JPG', id: 'x' }] }, /^items\[1\]\.id "x" repeats items\[0\]\.id/)
    rejects({ items: [{ path: 'a.png', metadata: [1] }] }, /^items\[0\]\.metadata must be an object/)
    rejects({ items: [] }, /^items must be a non-empty array/)
    rejects({ directory: '/tmp' }, /^directory must be relative/)
    rejects({ directory: '..' }, /^directory escapes IMPORT_DIR/)
    rejects({ directory: 'escape-dir' }, /^directory is a symlink that leaves IMPORT_DIR/)
    rejects({ directory: 'a.png' }, /^directory is not a directory/)
    rejects({ directory: 'x', items: [] }, /exactly one of/)
    rejects({ items: [{ path: 'a.png' }], idFromPath: true }, /^idFromPath applies to directory jobs only/)
    rejects({ directory: 'cats', idFromPath: 'yes' }, /^idFromPath must be a boolean$/)
  })

  it('keeps idFromPath for a directory job, and turns a path into a valid id', () => {
    assert.deepEqual(resolveJobSource({ directory: 'cats', idFromPath: true }, importDir), { kind: 'directory', root: realpathSync(importDir), directory: 'cats', idFromPath: true })
    assert.equal((resolveJobSource({ directory: 'cats' }, importDir) as { idFromPath: boolean }).idFromPath, false)
    const cases: Array<[string, string]> = [
      ['holiday-2024/sub/beach.jpg', 'holiday-2024:sub:beach.jpg'],
      ['a.png', 'a.png'],
      ['Ferien 2024/Strand & Meer.JPG', 'Ferien_2024:Strand___Meer.JPG'],
      ['été/ä.png', '_t_:_.png']
    ]
    for (const [rel, id] of cases) {
      assert.equal(idFromPath(rel), id, rel)
      assert.equal(idProblem(id), undefined, id)
    }
  })

  it('refuses every job when IMPORT_DIR is missing', () => {
    assert.throws(() => resolveJobSource({ directory: '.' }, path.join(base, 'nope')), /IMPORT_DIR .* does not exist/)
  })

  it('walks a directory recursively: image extensions only, no hidden entries, no escaping links', async () => {
    const r = resolveJobSource({ directory: '.' }, importDir)
    assert.equal(r.kind, 'directory')
    const found: string[] = []
    for await (const p of walkImages(importDir, r.kind === 'directory' ? r.directory : '')) found.push(p)
    assert.deepEqual(found, ['a.png', 'b.JPG', 'cats/c.webp', 'cats/deep/d.gif', 'cats/e.tiff', 'cats/link-to-a.png'])
    const sub: string[] = []
    for await (const p of walkImages(importDir, 'cats')) sub.push(p)
    assert.deepEqual(sub, ['cats/c.webp', 'cats/deep/d.gif', 'cats/e.tiff', 'cats/link-to-a.png'])
  })

  it('re-checks paths when reading', async () => {
    assert.equal((await readJobFile(importDir, 'a.png')).toString(), 'x')
    await assert.rejects(readJobFile(importDir, 'escape.png'), /leaves the job folder/)
    await assert.rejects(readJobFile(importDir, '../outside/secret.png'), /escapes/)
    await assert.rejects(readJobFile(importDir, 'a.png', 0), /limit is 0/)
  })

  it('sanitizes upload file names', () => {
    assert.equal(sanitizeFilename('../../etc/passwd'), 'passwd')
    assert.equal(sanitizeFilename('..\\..\\boot.ini'), 'boot.ini')
    assert.equal(sanitizeFilename('.htaccess'), 'htaccess')
    assert.equal(sanitizeFilename('my cat (1).png'), 'my_cat_1_.png')
    assert.equal(sanitizeFilename(''), 'file')
    assert.equal(sanitizeFilename('..'), 'file')
    assert.ok(sanitizeFilename('x'.repeat(500) + '.png').length <= 100)
  })
})
