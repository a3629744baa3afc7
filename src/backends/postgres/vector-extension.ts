/**
 * The pgvector extension this backend needs: 0.7 or newer (halfvec and its HNSW ops arrived in
 * 0.7); 0.8 adds iterative index scans, which a filtered search needs to return k results through
 * the index (on 0.7 a filtered search walks the rows matching the filter exactly instead).
 * A missing or older extension is refused at start, with the fix named.
 */
import type pg from 'pg'

export const MIN_VECTOR_VERSION = '0.7.0'
/** the first version with hnsw.iterative_scan */
export const ITERATIVE_SCAN_VERSION = '0.8.0'

const INSTALL_HINT = 'install pgvector on the PostgreSQL server (Debian/Ubuntu: sudo bash scripts/install-postgres.sh; ' +
  'elsewhere see https://github.com/pgvector/pgvector#installation), then run CREATE EXTENSION vector; in the database'

/** Raised at start when the database cannot hold vectors; the message says what to do. */
export class VectorExtensionError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'VectorExtensionError'
  }
}

/** -1, 0 or 1 as version `a` is older than, equal to or newer than `b` (numeric parts: 0.10 > 0.9) */
export function compareVersions (a: string, b: string): number {
  const pa = a.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0)
  const pb = b.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) return Math.sign(d)
  }
  return 0
}

/** Why this pgvector version cannot be used, or undefined when it can. */
export function vectorVersionProblem (version: string | undefined, database: string): string | undefined {
  if (version === undefined) return `the PostgreSQL server of database ${database} has no "vector" extension: ${INSTALL_HINT}`
  if (compareVersions(version, MIN_VECTOR_VERSION) < 0) {
    return `database ${database} has pgvector ${version}; align-search needs ${MIN_VECTOR_VERSION} or newer: ` +
      'upgrade pgvector on the server (Debian/Ubuntu: sudo bash scripts/install-postgres.sh), then run ALTER EXTENSION vector UPDATE; in the database'
  }
  return undefined
}

export interface VectorExtensionState {
  /** the version CREATE EXTENSION would install; undefined when the server has no pgvector at all */
  available?: string
  /** the version created in this database, if any */
  installed?: string
}

export async function readVectorExtension (client: pg.ClientBase): Promise<VectorExtensionState> {
  const r = await client.query<{ default_version: string | null, installed_version: string | null }>(
    "SELECT default_version, installed_version FROM pg_available_extensions WHERE name = 'vector'")
  const row = r.rows[0]
  const state: VectorExtensionState = {}
  if (row?.default_version != null) state.available = row.default_version
  if (row?.installed_version != null) state.installed = row.installed_version
  return state
}

/**
 * Refuses a server where CREATE EXTENSION vector cannot give a usable version. Checked before the
 * migrations (which create the extension) and again after them (an older one may already be there).
 */
export function assertVectorExtension (state: VectorExtensionState, database: string): void {
  const problem = vectorVersionProblem(state.installed ?? state.available, database)
  if (problem !== undefined) throw new VectorExtensionError(problem)
}

/** The error for a role that may not create the extension (it is not marked trusted). */
export function cannotCreateExtension (database: string, cause: string): VectorExtensionError {
  return new VectorExtensionError(`the "vector" extension is not created in database ${database}, and this role may not create it (${cause}): ` +
    `ask a superuser to run CREATE EXTENSION vector; in ${database}`)
}
