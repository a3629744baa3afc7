/**
 * glibc malloc tuning for processes that hold ONNX models, read by glibc once at process start (so it
 * is set in the environment: by `npm start`/`worker`/`index`, the Dockerfile, and here for the
 * background ingest process).
 *
 * Why: glibc raises its mmap threshold to the size of each large block freed (up to 32 MiB). Loading
 * a model frees big copies (the file's bytes, the parsed graph), so every later allocation below
 * 32 MiB, the weights included, lands in the heap, where the freed copies stay mapped as holes that
 * are never given back. A fixed threshold (which also turns the dynamic one off) serves each block
 * above it by its own mmap, returned to the system on free. Measured on the full-size vision tower
 * (236 MiB): process RSS after loading 649–653 MiB by default, 324–325 MiB with 128 KiB; the text
 * tower (417 MiB) 697 → 499 MiB (bench/report.md, align-base).
 */
export const MALLOC_MMAP_THRESHOLD = '131072'

/** `env` with the tuning added, unless whoever started the process chose a value of their own. */
export function withMallocTuning (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, MALLOC_MMAP_THRESHOLD_: env.MALLOC_MMAP_THRESHOLD_ ?? MALLOC_MMAP_THRESHOLD }
}
