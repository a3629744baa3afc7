/**
 * CPU time of whole process trees (a server and its background ingest process, the PostgreSQL
 * server and its backends), from /proc: each live process's own time plus the time of the
 * children it has already reaped (cutime/cstime), so a backend that exited still counts.
 */
import { readdirSync, readFileSync } from 'node:fs'

const TICKS_PER_S = 100

interface Stat { ppid: number, ms: number }

function readStats (): Map<number, Stat> {
  const out = new Map<number, Stat>()
  let pids: string[] = []
  try { pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d)) } catch { return out }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ') // fields from 3 (state) on
      // fields 14–17: utime, stime, cutime, cstime
      out.set(Number(pid), { ppid: Number(f[1]), ms: (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1000 / TICKS_PER_S })
    } catch { /* ended while we looked */ }
  }
  return out
}

/** user + system ms of the trees rooted at `roots` (the roots included); NaN where /proc is missing */
export function treeCpuMs (roots: number[]): number {
  const stats = readStats()
  if (stats.size === 0) return Number.NaN
  const children = new Map<number, number[]>()
  for (const [pid, s] of stats) children.set(s.ppid, [...(children.get(s.ppid) ?? []), pid])
  let total = 0
  const seen = new Set<number>()
  const stack = roots.filter((r) => stats.has(r))
  while (stack.length > 0) {
    const pid = stack.pop()!
    if (seen.has(pid)) continue
    seen.add(pid)
    total += stats.get(pid)!.ms
    stack.push(...(children.get(pid) ?? []))
  }
  return total
}

/** the parent of `pid` (e.g. the postmaster, from one of its backends) */
export function parentOf (pid: number): number | undefined {
  return readStats().get(pid)?.ppid
}
