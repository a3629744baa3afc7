/**
 * Reads environment variables one at a time into typed values (integers, sizes, durations,
 * booleans, choices), recording every problem with the variable's name instead of throwing, so
 * that loadConfig can report them all at once.
 */
export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join('\n  ')}`)
    this.name = 'ConfigError'
  }
}

export type Env = Record<string, string | undefined>

export const MiB = 1024 * 1024
const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: MiB, mb: MiB, mib: MiB, g: 1024 * MiB, gb: 1024 * MiB, gib: 1024 * MiB }
const TIME_UNITS: Record<string, number> = { '': 1, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** Reads one variable at a time, recording problems instead of throwing. */
export class Reader {
  readonly problems: string[] = []
  constructor (private readonly env: Env) {}

  /** the raw value, or undefined when unset or blank */
  raw (name: string): string | undefined {
    const v = this.env[name]
    return v === undefined || v.trim() === '' ? undefined : v.trim()
  }

  string (name: string, fallback: string): string {
    return this.raw(name) ?? fallback
  }

  int (name: string, fallback: number, min: number, max: number): number {
    const v = this.raw(name)
    if (v === undefined) return fallback
    const n = /^[+-]?\d+$/.test(v) ? Number(v) : Number.NaN
    return this.range(name, v, n, min, max, fallback, 'an integer')
  }

  /** integer bytes, optionally with a unit: 20MB, 512k, 1GiB (binary multiples) */
  bytes (name: string, fallback: number, min: number, max: number): number {
    const v = this.raw(name)
    if (v === undefined) return fallback
    const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(v)
    const unit = SIZE_UNITS[(m?.[2] ?? '').toLowerCase()]
    const n = m !== null && unit !== undefined ? Math.floor(Number(m[1]) * unit) : Number.NaN
    return this.range(name, v, n, min, max, fallback, 'a size in bytes (e.g. 20971520 or 20MB)')
  }

  /** milliseconds, optionally with a unit: 60000, 60s, 1m, 1h */
  duration (name: string, fallback: number, min: number, max: number): number {
    const v = this.raw(name)
    if (v === undefined) return fallback
    const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(v)
    const unit = TIME_UNITS[(m?.[2] ?? '').toLowerCase()]
    const n = m !== null && unit !== undefined ? Math.floor(Number(m[1]) * unit) : Number.NaN
    return this.range(name, v, n, min, max, fallback, 'a duration (e.g. 60000, 60s, 1m)')
  }

  /** a number written as 100000000 or 1e8 */
  number (name: string, fallback: number, min: number, max: number): number {
    const v = this.raw(name)
    if (v === undefined) return fallback
    const n = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(v) ? Number(v) : Number.NaN
    return this.range(name, v, Number.isInteger(n) ? n : Number.NaN, min, max, fallback, 'an integer (e.g. 100000000 or 1e8)')
  }

  bool (name: string, fallback: boolean): boolean {
    const v = this.raw(name)?.toLowerCase()
    if (v === undefined) return fallback
    if (['true', '1', 'yes', 'on'].includes(v)) return true
    if (['false', '0', 'no', 'off'].includes(v)) return false
    this.problems.push(`${name} must be true or false, got "${v}"`)
    return fallback
  }

  oneOf<T extends string> (name: string, fallback: T, allowed: readonly T[]): T {
    const v = this.raw(name)
    if (v === undefined) return fallback
    if ((allowed as readonly string[]).includes(v)) return v as T
    this.problems.push(`${name} must be one of ${allowed.join(', ')}, got "${v}"`)
    return fallback
  }

  private range (name: string, raw: string, n: number, min: number, max: number, fallback: number, what: string): number {
    if (!Number.isFinite(n)) {
      this.problems.push(`${name} must be ${what}, got "${raw}"`)
      return fallback
    }
    if (n < min || n > max) {
      this.problems.push(`${name} must be between ${min} and ${max}, got ${raw}`)
      return fallback
    }
    return n
  }
}
