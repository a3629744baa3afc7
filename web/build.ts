/**
 * Build the browser page into web/dist (index.html, app.js, app.css) with esbuild.
 * `npm run build` runs this file (scripts/build.mjs); the server only serves web/dist.
 */
import { copyFile, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises'
import { existsSync, readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const WEB_DIR = path.dirname(fileURLToPath(import.meta.url))
export const DIST_DIR = path.join(WEB_DIR, 'dist')
const OUTPUTS = ['index.html', 'app.js', 'app.css']

function newestMtime (dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs)
  }
  return newest
}

/** True when any output is missing or older than index.html, build.ts or anything under web/src. */
export function webIsStale (distDir = DIST_DIR): boolean {
  const outputs = OUTPUTS.map((f) => path.join(distDir, f))
  if (!outputs.every((f) => existsSync(f))) return true
  const oldestOutput = Math.min(...outputs.map((f) => statSync(f).mtimeMs))
  const sources = Math.max(
    newestMtime(path.join(WEB_DIR, 'src')),
    statSync(path.join(WEB_DIR, 'index.html')).mtimeMs,
    statSync(fileURLToPath(import.meta.url)).mtimeMs
  )
  return sources > oldestOutput
}

/**
 * Bundle web/src/main.ts (and the CSS it imports) and copy index.html into `distDir`.
 * Files are built in a temp folder and renamed into place one by one, so a server
 * reading dist never sees a half-written file.
 */
export async function buildWeb (opts: { distDir?: string, minify?: boolean } = {}): Promise<{ distDir: string, ms: number }> {
  const started = performance.now()
  const distDir = opts.distDir ?? DIST_DIR
  const { build } = await import('esbuild')
  await mkdir(path.dirname(distDir), { recursive: true })
  const tmp = await mkdtemp(path.join(path.dirname(distDir), '.dist-'))
  try {
    await build({
      entryPoints: { app: path.join(WEB_DIR, 'src', 'main.ts') },
      outdir: tmp,
      bundle: true,
      format: 'esm',
      target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
      minify: opts.minify ?? true,
      sourcemap: 'linked',
      legalComments: 'none',
      logLevel: 'silent'
    })
    await copyFile(path.join(WEB_DIR, 'index.html'), path.join(tmp, 'index.html'))
    await mkdir(distDir, { recursive: true })
    for (const name of await readdir(tmp)) await rename(path.join(tmp, name), path.join(distDir, name))
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
  return { distDir, ms: Math.round(performance.now() - started) }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { distDir, ms } = await buildWeb()
  const sizes = await Promise.all(OUTPUTS.map(async (f) => `${f} ${((await stat(path.join(distDir, f))).size / 1024).toFixed(1)} KiB`))
  console.log(`built ${path.relative(process.cwd(), distDir) || distDir} in ${ms} ms: ${sizes.join(', ')}`)
}
