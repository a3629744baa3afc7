/**
 * CPU time of this process's live child processes (the background ingest process), from /proc.
 * process.cpuUsage() counts this process only, and Node has no RUSAGE_CHILDREN.
 */
import { readdirSync, readFileSync } from 'node:fs'

/** Linux's USER_HZ, the unit of utime/stime in /proc/<pid>/stat: 100 on every mainstream build */
const TICKS_PER_S = 100

/** user + system ms of each live child, by pid; empty where /proc is missing */
export function childCpuMs (): Map<number, number> {
  const out = new Map<number, number>()
  let pids: string[] = []
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d))
  } catch {
    return out
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ') // fields from 3 (state) on
      if (Number(f[1]) !== process.pid) continue // field 4: ppid
      out.set(Number(pid), (Number(f[11]) + Number(f[12])) * 1000 / TICKS_PER_S) // fields 14, 15: utime, stime
    } catch { /* the process ended while we looked */ }
  }
  return out
}

/** total over all live children */
export const totalChildCpuMs = (): number => [...childCpuMs().values()].reduce((s, v) => s + v, 0)
