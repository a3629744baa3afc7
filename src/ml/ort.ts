/**
 * The one place that loads onnxruntime-node. By default it is the project's own dependency (CPU
 * build). ORT_NODE_PREFIX points at a separate install (scripts/install-cuda-provider.sh) whose
 * onnxruntime-node has the CUDA provider libraries beside its libonnxruntime: a provider library
 * only loads next to the exact ONNX Runtime version it was built for, so the GPU build lives in its
 * own prefix and the lockfile stays as it is. Only one of the two is ever imported into a process,
 * since two libonnxruntime versions must not share one.
 */
import { createRequire } from 'node:module'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import type * as Ort from 'onnxruntime-node'

export type OrtModule = typeof Ort

/** Where onnxruntime-node comes from: the ORT_NODE_PREFIX install, or the project's dependency. */
export function ortSource (env: NodeJS.ProcessEnv = process.env): { prefix?: string, entry: string } {
  const prefix = env.ORT_NODE_PREFIX
  if (prefix === undefined || prefix === '') return { entry: 'onnxruntime-node' }
  // resolved as Node would from inside the prefix, so the package's own "main" is honoured
  const require = createRequire(path.join(path.resolve(prefix), 'noop.js'))
  const own = path.resolve(prefix, 'node_modules') + path.sep
  let main: string | undefined
  try {
    main = require.resolve('onnxruntime-node')
  } catch { /* reported below */ }
  // resolution also walks up from the prefix: a copy found above it (the project's own) is not the one asked for
  if (main === undefined || !main.startsWith(own)) {
    throw new Error(`ORT_NODE_PREFIX=${prefix}: no onnxruntime-node in ${own} (scripts/install-cuda-provider.sh installs one there)`)
  }
  return { prefix, entry: pathToFileURL(main).href }
}

async function importOrt (): Promise<OrtModule> {
  const { entry } = ortSource()
  const mod = await import(entry) as OrtModule & { default?: OrtModule }
  // a CommonJS package: its exports arrive as the default export
  return mod.default ?? mod
}

/** onnxruntime-node, from ORT_NODE_PREFIX when set. */
export const ort: OrtModule = await importOrt()
