/**
 * Preloaded into a server under test only (`node --expose-gc --import <this>`; plain JavaScript, since the server runs without tsx), never
 * by src/: on SIGUSR2 it forces full garbage collections and writes `process.memoryUsage()` of the
 * main thread, with a sequence number, to HEAP_PROBE_FILE. A leak measured after a forced GC is
 * retained memory, not garbage that a lazy collector has not reached yet, which RSS cannot tell apart.
 */
import { renameSync, writeFileSync } from 'node:fs'

const file = process.env.HEAP_PROBE_FILE
const gc = globalThis.gc
if (file === undefined || gc === undefined) throw new Error('heap-probe needs HEAP_PROBE_FILE and node --expose-gc')

let seq = 0
process.on('SIGUSR2', () => {
  // twice: objects freed by the first collection's finalizers are collected by the second
  gc()
  gc()
  seq++
  writeFileSync(`${file}.tmp`, JSON.stringify({ seq, ...process.memoryUsage() }))
  renameSync(`${file}.tmp`, file) // the reader never sees a half-written file
})
