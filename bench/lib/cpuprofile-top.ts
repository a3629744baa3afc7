/**
 * Prints the functions with the most self time in a V8 .cpuprofile (from `node --cpu-prof`).
 * Usage: npx tsx bench/lib/cpuprofile-top.ts <file.cpuprofile> [count]
 */
import { readFileSync } from 'node:fs'

interface Node { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface Profile { nodes: Node[], samples: number[], timeDeltas: number[] }

export function topSelfTime (p: Profile, count = 25): Array<{ name: string, ms: number, share: number }> {
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const self = new Map<string, number>()
  let total = 0
  p.samples.forEach((id, i) => {
    const n = byId.get(id)
    const dt = (p.timeDeltas[i] ?? 0) / 1000
    total += dt
    if (n === undefined) return
    const f = n.callFrame
    const where = f.url === '' ? '' : ` ${f.url.replace(/^.*\/(node_modules|src|bench)\//, '$1/')}:${f.lineNumber + 1}`
    const key = `${f.functionName === '' ? '(anonymous)' : f.functionName}${where}`
    self.set(key, (self.get(key) ?? 0) + dt)
  })
  return [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, count).map(([name, ms]) => ({ name, ms, share: ms / total }))
}

if (process.argv[1]?.endsWith('cpuprofile-top.ts') === true && process.argv[2] !== undefined) {
  const rows = topSelfTime(JSON.parse(readFileSync(process.argv[2], 'utf8')) as Profile, Number(process.argv[3] ?? 25))
  for (const r of rows) console.log(`${r.ms.toFixed(0).padStart(8)} ms ${(r.share * 100).toFixed(1).padStart(5)}%  ${r.name}`)
}
