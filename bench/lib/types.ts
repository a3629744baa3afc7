/** What every benchmark section hands to the report. */
import type { MachineInfo } from './machine.js'

export type Cell = string | number | null

export interface Table {
  title: string
  columns: string[]
  rows: Cell[][]
  /** a line under the table */
  note?: string
}

/** A target from the issues, judged on a measured ratio (or, for the encoder budgets, ms/item). */
export interface Target {
  section: string
  name: string
  /** e.g. "≥ 20×", "≤ 2 ms" */
  goal: string
  measured: number | null
  unit: string
  /** null = not measured (skipped, or the precondition failed) */
  met: boolean | null
  detail?: string
}

export interface SectionResult {
  id: string
  title: string
  machine: MachineInfo
  /** set when the section did not run, with the reason */
  skipped?: string
  dataset: string
  params: Record<string, string | number | boolean>
  tables: Table[]
  targets: Target[]
  /** findings, caveats, bottlenecks, in plain sentences */
  notes: string[]
  wallMs: number
  /** anything worth keeping in report.json that has no table */
  raw?: Record<string, unknown>
}

/** Options every section sees (parsed once by run.ts). */
export interface BenchOptions {
  n: number
  nLarge: number
  /** size of the random-unit ANN set (capped at n) */
  nRandom: number
  /** vectors stored through each backend (backends section) */
  nBackends: number
  /** when > 0 the backends section runs at this size, bulk-loaded, with deletes (opt-in) */
  nBackendsLarge: number
  /** seconds per load-test window (service) */
  duration: number
  sections: string[]
  queries: number
  efSearch: number[]
  M: number
  efConstruction: number
  /** perturbation σ for the synthetic ANN set; undefined = derived from the pool (see ann.ts) */
  sigma: number | undefined
  k: number
  modelDir: string
  poolDir: string
  outDir: string
  /** scratch folder (git-ignored) */
  workDir: string
  seed: number
  /** images generated for the service's indexing job and the ingest section */
  importN: number
  /** extra environment for the server (service section) */
  serverEnv: Record<string, string>
  /** extra node flags for the server (e.g. --cpu-prof) */
  serverNodeArgs: string[]
  /** measuring time per encoder cell, ms */
  cellMs: number
  commandLine: string
}
