/** Writes bench/report.md (one table per measurement, a summary of targets) and bench/report.json. */
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { ALL_SECTIONS } from './lib/args.js'
import { describeMachine } from './lib/machine.js'
import { fmt } from './lib/stats.js'
import type { BenchOptions, Cell, SectionResult, Table, Target } from './lib/types.js'

function cell (c: Cell): string {
  if (c === null) return '–'
  return String(c).replaceAll('|', '\\|')
}

export function markdownTable (t: Pick<Table, 'columns' | 'rows'>): string {
  const head = `| ${t.columns.map(cell).join(' | ')} |`
  const sep = `|${t.columns.map(() => '---').join('|')}|`
  return [head, sep, ...t.rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n')
}

function verdict (t: Target): string {
  return t.met === null ? 'not measured' : t.met ? '**met**' : '**missed**'
}

function measured (t: Target): string {
  return t.measured === null ? '–' : `${fmt(t.measured)}${t.unit === '×' ? '×' : ` ${t.unit}`}`
}

function section (s: SectionResult): string {
  const out = [`## ${s.title}`, '']
  out.push(`- **Machine:** ${describeMachine(s.machine)}`)
  if (s.skipped !== undefined) {
    out.push('', `**Skipped:** ${s.skipped}`, '')
    return out.join('\n')
  }
  out.push(`- **Dataset:** ${s.dataset}`)
  out.push(`- **Parameters:** ${Object.entries(s.params).map(([k, v]) => `${k} = ${String(v)}`).join(', ')}`)
  out.push(`- **Section wall time:** ${fmt(s.wallMs / 1000)} s`, '')
  for (const t of s.tables) {
    out.push(`### ${t.title}`, '', markdownTable(t), '')
    if (t.note !== undefined) out.push(t.note, '')
  }
  if (s.targets.length > 0) {
    out.push(markdownTable({ columns: ['target', 'goal', 'measured', 'verdict', 'detail'], rows: s.targets.map((t) => [t.name, t.goal, measured(t), verdict(t), t.detail ?? '']) }), '')
  }
  if (s.notes.length > 0) out.push(...s.notes.map((n) => `- ${n}`), '')
  return out.join('\n')
}

/**
 * The sections of an earlier report.json in `outDir` that this run did not redo, each marked with
 * the run it came from, so `--sections photos` updates one section and keeps the rest.
 */
async function earlierSections (outDir: string, ran: SectionResult[]): Promise<Array<SectionResult & { from?: string }>> {
  const file = path.join(outDir, 'report.json')
  if (!existsSync(file)) return []
  const old = JSON.parse(await readFile(file, 'utf8')) as { commandLine?: string, generatedAt?: string, sections?: Array<SectionResult & { from?: string }> }
  const done = new Set(ran.map((s) => s.id))
  return (old.sections ?? []).filter((s) => !done.has(s.id)).map((s) => ({ ...s, from: s.from ?? `${old.commandLine ?? '?'} on ${old.generatedAt ?? '?'}` }))
}

const order = (id: string): number => { const i = (ALL_SECTIONS as readonly string[]).indexOf(id); return i < 0 ? ALL_SECTIONS.length : i }

export async function writeReport (opts: BenchOptions, ran: SectionResult[], wallMs: number): Promise<{ md: string, json: string }> {
  const sections: Array<SectionResult & { from?: string }> = [...ran, ...await earlierSections(opts.outDir, ran)].sort((a, b) => order(a.id) - order(b.id))
  const targets = sections.flatMap((s) => s.skipped !== undefined && s.targets.length === 0 ? [] : s.targets)
  const md = [
    '# align-search benchmark report',
    '',
    `Produced by \`${opts.commandLine}\` on ${new Date().toISOString()} in ${fmt(wallMs / 1000)} s${sections.some((s) => s.from !== undefined) ? '; sections it did not run are kept from the earlier runs named in the table below' : ''}.`,
    'Every speed target is a ratio measured side by side in the same run; absolute figures are shown for context only.',
    '',
    '## Targets',
    '',
    markdownTable({ columns: ['section', 'target', 'goal', 'measured', 'verdict', 'detail'], rows: targets.map((t) => [t.section, t.name, t.goal, measured(t), verdict(t), t.detail ?? '']) }),
    '',
    '## Sections run',
    '',
    markdownTable({ columns: ['section', 'status', 'wall s'], rows: sections.map((s) => [s.title, `${s.skipped === undefined ? 'ran' : `skipped: ${s.skipped}`}${s.from === undefined ? '' : ` (kept from \`${s.from}\`)`}`, fmt(s.wallMs / 1000)]) }),
    '',
    ...sections.map(section)
  ].join('\n')
  const mdPath = path.join(opts.outDir, 'report.md')
  const jsonPath = path.join(opts.outDir, 'report.json')
  await mkdir(opts.outDir, { recursive: true })
  await writeFile(mdPath, md)
  await writeFile(jsonPath, JSON.stringify({ commandLine: opts.commandLine, options: opts, wallMs, generatedAt: new Date().toISOString(), targets, sections }, null, 2))
  return { md: mdPath, json: jsonPath }
}
