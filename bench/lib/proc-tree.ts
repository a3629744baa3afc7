/**
 * Samples a process and its descendants from /proc while they run: peak RSS (VmHWM), minor page
 * faults and command line of each. Processes that exit keep their last sample, which misses at
 * most the final interval.
 */
import { readdirSync, readFileSync } from 'node:fs'

export interface ProcSample { pid: number, cmdline: string, hwmMiB: number, firstRssMiB: number, minflt: number }

function statOf (pid: number): { ppid: number, minflt: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ') // from field 3 (state) on
    return { ppid: Number(f[1]), minflt: Number(f[7]) }
  } catch { return undefined }
}

function kib (status: string, key: string): number {
  const m = new RegExp(`${key}:\\s+(\\d+)`).exec(status)
  return m === null ? 0 : Number(m[1]) / 1024
}

/** Starts sampling `root`'s tree every `everyMs`; stop() returns one sample per process seen. */
export function watchTree (root: number, everyMs = 100): { stop: () => ProcSample[] } {
  const seen = new Map<number, ProcSample>()
  const tick = (): void => {
    let pids: number[] = []
    try { pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number) } catch { return }
    const parent = new Map<number, number>()
    const stats = new Map<number, { ppid: number, minflt: number }>()
    for (const pid of pids) {
      const st = statOf(pid)
      if (st !== undefined) { parent.set(pid, st.ppid); stats.set(pid, st) }
    }
    const inTree = (pid: number): boolean => {
      for (let p: number | undefined = pid, depth = 0; p !== undefined && p > 1 && depth < 16; p = parent.get(p), depth++) if (p === root) return true
      return false
    }
    for (const [pid, st] of stats) {
      if (!inTree(pid)) continue
      try {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8')
        if (/State:\s+Z/.test(status)) continue // a zombie has no memory figures left
        const prev = seen.get(pid)
        const cmdline = prev?.cmdline || readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim()
        seen.set(pid, { pid, cmdline: cmdline === '' ? (prev?.cmdline ?? '') : cmdline, hwmMiB: Math.max(prev?.hwmMiB ?? 0, kib(status, 'VmHWM')), firstRssMiB: prev?.firstRssMiB ?? kib(status, 'VmRSS'), minflt: st.minflt })
      } catch { /* it exited between the reads */ }
    }
  }
  tick()
  const timer = setInterval(tick, everyMs)
  return { stop: () => { clearInterval(timer); return [...seen.values()] } }
}

/** The RSS of a live process, MiB (0 when it is gone). */
export function rssMiB (pid: number): number {
  try { return kib(readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmRSS') } catch { return 0 }
}
