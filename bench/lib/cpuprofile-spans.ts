/**
 * The main thread's long busy spans in a V8 .cpuprofile: stretches of samples without an idle one
 * in between, i.e. time the event loop could not answer anything else. For each 10 s of the profile
 * it counts the spans ≥ the threshold, and over all of them it lists the project functions
 * (src/, node_modules/<package>) on the stack, inclusive, so blocking work is named.
 * Usage: npx tsx bench/lib/cpuprofile-spans.ts <file.cpuprofile> [threshold ms, default 5]
 */
import { readFileSync } from 'node:fs'

interface Node { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface Profile { nodes: Node[], samples: number[], timeDeltas: number[], startTime: number }

export interface SpanReport {
  buckets: Array<{ fromS: number, spans: number, longestMs: number, busyMs: number }>
  /** project frames on the stack during the long spans, ms inclusive */
  frames: Array<{ name: string, ms: number }>
}

function frameName (n: Node): string | undefined {
  const f = n.callFrame
  const m = /\/(src\/.*|node_modules\/(?:@[^/]+\/)?[^/]+)/.exec(f.url)
  if (m === null) return undefined
  return `${f.functionName === '' ? '(anonymous)' : f.functionName} ${m[1]!}${m[1]!.startsWith('src/') ? `:${f.lineNumber + 1}` : ''}`
}

export function busySpans (p: Profile, thresholdMs = 5): SpanReport {
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const stackNames = (id: number): Set<string> => {
    const out = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const name = frameName(byId.get(cur)!)
      if (name !== undefined) out.add(name)
    }
    return out
  }
  const buckets = new Map<number, { spans: number, longestMs: number, busyMs: number }>()
  const frames = new Map<string, number>()
  let t = 0
  let span: Array<{ id: number, dt: number }> = []
  let spanStart = 0
  const close = (): void => {
    const ms = span.reduce((s, x) => s + x.dt, 0)
    if (ms >= thresholdMs) {
      const b = Math.floor(spanStart / 10_000)
      const row = buckets.get(b) ?? { spans: 0, longestMs: 0, busyMs: 0 }
      row.spans++
      row.longestMs = Math.max(row.longestMs, ms)
      row.busyMs += ms
      buckets.set(b, row)
      for (const s of span) for (const name of stackNames(s.id)) frames.set(name, (frames.get(name) ?? 0) + s.dt)
    }
    span = []
  }
  p.samples.forEach((id, i) => {
    const dt = (p.timeDeltas[i] ?? 0) / 1000
    t += dt
    const name = byId.get(id)?.callFrame.functionName
    if (name === '(idle)') { if (span.length > 0) close(); return }
    if (span.length === 0) spanStart = t
    span.push({ id, dt })
  })
  if (span.length > 0) close()
  return {
    buckets: [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([b, r]) => ({ fromS: b * 10, ...r })),
    frames: [...frames.entries()].sort((a, b) => b[1] - a[1]).map(([name, ms]) => ({ name, ms }))
  }
}

if (process.argv[1]?.endsWith('cpuprofile-spans.ts') === true && process.argv[2] !== undefined) {
  const threshold = Number(process.argv[3] ?? 5)
  const r = busySpans(JSON.parse(readFileSync(process.argv[2], 'utf8')) as Profile, threshold)
  console.log(`busy spans ≥ ${threshold} ms, per 10 s of the profile:`)
  for (const b of r.buckets) console.log(`  ${String(b.fromS).padStart(4)} s  ${String(b.spans).padStart(4)} spans  longest ${b.longestMs.toFixed(1)} ms  busy ${b.busyMs.toFixed(0)} ms`)
  console.log('project frames on the stack during those spans (inclusive ms):')
  for (const f of r.frames.slice(0, 30)) console.log(`  ${f.ms.toFixed(0).padStart(7)}  ${f.name}`)
}
