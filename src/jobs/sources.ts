/**
 * Where a job's files come from, checked when the job is created: paths are relative to a root
 * (IMPORT_DIR, or a trusted folder such as the demo pool) and may not leave it, neither by
 * `..` nor through a symlink. Files are re-checked when read, in case the tree changed since.
 */
import { realpathSync, statSync } from 'node:fs'
import { access, constants, open, readdir, realpath, stat } from 'node:fs/promises'
import path from 'node:path'
import { BadRequestError, PayloadTooLargeError } from '../core/errors.js'
import type { JobItem } from '../backends/ports.js'
import { idProblem } from '../core/ids.js'
import { MAX_SKIPPED_PATHS, noneSkipped, type JobSkipped, type JobSource, type Metadata, type SkipReason } from '../core/types.js'

/** File extensions a directory job picks up (lower case, without the dot). */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set(['jpg', 'jpeg', 'png', 'webp', 'gif', 'avif', 'tif', 'tiff', 'bmp'])
/** most items in one job */
export const MAX_JOB_ITEMS = 1_000_000
/** largest file a job reads (default) */
export const DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024

export type ResolvedSource =
  | { kind: 'items', root: string, items: JobItem[] }
  | { kind: 'directory', root: string, directory: string, idFromPath: boolean }

/**
 * The id a directory job with `idFromPath` gives a file: its path relative to the job's root, with
 * "/" written as ":" (ids may not hold "/") and any other character an id may not hold as "_".
 * `holiday-2024/sub/beach.jpg` → `holiday-2024:sub:beach.jpg`. Paths that map to the same id
 * (`a b.jpg` and `a_b.jpg`) are the same id: the second file fails with CONFLICT.
 */
export function idFromPath (rel: string): string {
  return rel.split('/').map((part) => part.replace(/[^A-Za-z0-9._-]/g, '_')).join(':')
}

export function hasImageExtension (name: string): boolean {
  return IMAGE_EXTENSIONS.has(path.extname(name).slice(1).toLowerCase())
}

/** true when `p` (already resolved) is `root` or inside it */
function inside (root: string, p: string): boolean {
  const rel = path.relative(root, p)
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))
}

function isPlainObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v)
}

/**
 * Checks one client-supplied relative path; returns it normalized ('/' separators) and the
 * real path of what it names. Throws BadRequestError naming `field`.
 */
function checkPath (rootReal: string, p: unknown, field: string, rootName: string, want: 'file' | 'directory'): { rel: string, real: string } {
  if (typeof p !== 'string') throw new BadRequestError(`${field} must be a string`)
  if (p.includes('\0')) throw new BadRequestError(`${field} contains a NUL byte`)
  if (p.length > 4096) throw new BadRequestError(`${field} is longer than 4096 characters`)
  if (path.isAbsolute(p) || path.win32.isAbsolute(p)) throw new BadRequestError(`${field} must be relative to ${rootName}, got an absolute path`)
  const full = path.resolve(rootReal, p)
  if (!inside(rootReal, full)) throw new BadRequestError(`${field} escapes ${rootName} ("${p}")`)
  let real: string
  try {
    real = realpathSync(full)
  } catch {
    // say where the root resolves: "holiday-2024" is looked for in the server's folder, not the client's
    throw new BadRequestError(`${field}: no such ${want} under ${rootName} ("${p}"); ${rootName} is ${rootReal}, so create ${full} first`)
  }
  if (!inside(rootReal, real)) throw new BadRequestError(`${field} is a symlink that leaves ${rootName} ("${p}")`)
  const st = statSync(real)
  if (want === 'file' ? !st.isFile() : !st.isDirectory()) throw new BadRequestError(`${field} is not a ${want} ("${p}")`)
  const rel = path.relative(rootReal, full).split(path.sep).join('/')
  return { rel, real }
}

/**
 * Validates a job source against `root` and returns what to store. Throws BadRequestError
 * naming the bad field (`items[3].path`, `directory`, ...).
 * @param rootName how messages call the root (default "IMPORT_DIR")
 */
export function resolveJobSource (source: JobSource, root: string | undefined, rootName = 'IMPORT_DIR'): ResolvedSource {
  if (!isPlainObject(source)) throw new BadRequestError('the job source must be an object with "items" or "directory"')
  const hasItems = 'items' in source
  const hasDir = 'directory' in source
  if (hasItems === hasDir) throw new BadRequestError('the job source needs exactly one of "items" or "directory"')
  if (root === undefined || root === '') throw new BadRequestError(`${rootName} is not configured: jobs over server-side files are disabled`)
  let rootReal: string
  try {
    rootReal = realpathSync(root)
    if (!statSync(rootReal).isDirectory()) throw new Error('not a directory')
  } catch {
    throw new BadRequestError(`${rootName} (${root}) does not exist or is not a folder`)
  }

  const byPath = (source as { idFromPath?: unknown }).idFromPath
  if (byPath !== undefined) {
    if (typeof byPath !== 'boolean') throw new BadRequestError('idFromPath must be a boolean')
    if (hasItems) throw new BadRequestError('idFromPath applies to directory jobs only: give each item its own "id" instead')
  }
  if (hasDir) {
    const { rel } = checkPath(rootReal, (source as { directory: unknown }).directory, 'directory', rootName, 'directory')
    return { kind: 'directory', root: rootReal, directory: rel, idFromPath: byPath === true }
  }
  const items = (source as { items: unknown }).items
  if (!Array.isArray(items) || items.length === 0) throw new BadRequestError('items must be a non-empty array')
  if (items.length > MAX_JOB_ITEMS) throw new BadRequestError(`items has ${items.length} entries; at most ${MAX_JOB_ITEMS}`)
  const seenIds = new Map<string, number>()
  const out: JobItem[] = items.map((raw: unknown, i) => {
    if (!isPlainObject(raw)) throw new BadRequestError(`items[${i}] must be an object with a "path"`)
    const { rel } = checkPath(rootReal, raw.path, `items[${i}].path`, rootName, 'file')
    const item: JobItem = { path: rel }
    if (raw.id !== undefined) {
      const problem = idProblem(raw.id)
      if (problem !== undefined) throw new BadRequestError(`items[${i}].id ${problem}`)
      const id = raw.id as string
      const first = seenIds.get(id)
      if (first !== undefined) throw new BadRequestError(`items[${i}].id "${id}" repeats items[${first}].id`)
      seenIds.set(id, i)
      item.id = id
    }
    if (raw.metadata !== undefined) {
      if (!isPlainObject(raw.metadata)) throw new BadRequestError(`items[${i}].metadata must be an object`)
      item.metadata = raw.metadata as Metadata
    }
    return item
  })
  return { kind: 'items', root: rootReal, items: out }
}

/** Told about each file a listing leaves out, with its path relative to the root and why. */
export type OnSkip = (rel: string, reason: SkipReason) => void

/**
 * Lists image files under `root/dir`, recursively, in a stable (sorted) order, as paths relative
 * to `root`. Skips hidden entries and symlinked folders (no cycles) silently; every other file it
 * leaves out (not an image by extension; unreadable: no read permission, a dangling symlink or one
 * that leaves `root`, a sub-folder that cannot be listed) is reported to `onSkip`.
 */
export async function * walkImages (root: string, dir: string, signal?: AbortSignal, onSkip: OnSkip = () => {}): AsyncGenerator<string> {
  const rootReal = await realpath(root)
  yield * walkFolder(rootReal, dir === '' ? '.' : dir, signal, onSkip, true)
}

async function * walkFolder (rootReal: string, rel: string, signal: AbortSignal | undefined, onSkip: OnSkip, top: boolean): AsyncGenerator<string> {
  if (signal?.aborted === true) return
  let entries
  try {
    entries = await readdir(path.join(rootReal, rel), { withFileTypes: true })
  } catch (err) {
    // the job's own folder must be readable; a sub-folder that is not is counted, not fatal
    if (top) throw err
    onSkip(rel, 'unreadable')
    return
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  for (const e of entries) {
    if (e.name.startsWith('.')) continue
    const childRel = rel === '.' ? e.name : `${rel}/${e.name}`
    if (e.isDirectory()) { yield * walkFolder(rootReal, childRel, signal, onSkip, false); continue }
    if (!e.isFile() && !e.isSymbolicLink()) continue
    if (!hasImageExtension(e.name)) {
      if (e.isFile()) onSkip(childRel, 'not an image')
      continue
    }
    let target = path.join(rootReal, childRel)
    if (e.isSymbolicLink()) {
      try {
        target = await realpath(target)
        if (!inside(rootReal, target) || !(await stat(target)).isFile()) { onSkip(childRel, 'unreadable'); continue }
      } catch { onSkip(childRel, 'unreadable'); continue }
    }
    try {
      await access(target, constants.R_OK)
    } catch { onSkip(childRel, 'unreadable'); continue }
    yield childRel
  }
}

/** Collects a listing's skips into a job's `skipped` (exact counts, the first MAX_SKIPPED_PATHS paths). */
export function skipCounter (): { onSkip: OnSkip, skipped: JobSkipped } {
  const skipped = noneSkipped()
  return {
    skipped,
    onSkip: (rel, reason) => {
      if (reason === 'not an image') skipped.notImage++
      else skipped.unreadable++
      if (skipped.paths.length < MAX_SKIPPED_PATHS) skipped.paths.push({ path: rel, reason })
    }
  }
}

/**
 * Reads `root/rel`, re-checking that it (after symlinks) is still a file inside `root`.
 * Throws PayloadTooLargeError above `maxBytes`.
 */
export async function readJobFile (rootReal: string, rel: string, maxBytes = DEFAULT_MAX_FILE_BYTES): Promise<Buffer> {
  const full = path.resolve(rootReal, rel)
  if (!inside(rootReal, full)) throw new BadRequestError(`"${rel}" escapes the job folder`)
  const real = await realpath(full)
  if (!inside(rootReal, real)) throw new BadRequestError(`"${rel}" is a symlink that leaves the job folder`)
  const fh = await open(real, 'r')
  try {
    const st = await fh.stat()
    if (!st.isFile()) throw new BadRequestError(`"${rel}" is not a file`)
    if (st.size > maxBytes) throw new PayloadTooLargeError(`"${rel}" is ${st.size} bytes; the limit is ${maxBytes}`)
    return await fh.readFile()
  } finally {
    await fh.close()
  }
}

/** A safe file name for a staged upload: base name only, [A-Za-z0-9._-], no leading dot, ≤ 100 chars. */
export function sanitizeFilename (name: string): string {
  const base = name.split(/[/\\]/).pop() ?? ''
  const safe = base.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[.]+/, '').slice(-100)
  return safe === '' || safe === '_' ? 'file' : safe
}
