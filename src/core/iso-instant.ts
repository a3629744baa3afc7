/**
 * The ISO-8601 instants the metadata filter compares: `YYYY-MM-DD`, optionally `THH:MM`, `:SS`,
 * `.s` to `.sss`, and `Z` or `±HH:MM`; no offset means UTC. One strict form, because PostgreSQL
 * evaluates the same rule in SQL (migration 0006's align_search_instant) and the two must agree on
 * every string: no week dates, no leap seconds, years 0001–9999, milliseconds at most.
 */

export const ISO_INSTANT = /^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,3}))?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?$/

function isLeap (y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/** days from 1970-01-01 to the civil date y-m-d (proleptic Gregorian; H. Hinnant's days_from_civil) */
function daysFromCivil (year: number, m: number, d: number): number {
  const y = m <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yoe = y - era * 400
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
}

/** milliseconds since 1970-01-01T00:00Z, or undefined when `s` is not an instant in the form above */
export function parseInstant (s: string): number | undefined {
  const m = ISO_INSTANT.exec(s)
  if (m === null) return undefined
  const year = Number(m[1]); const month = Number(m[2]); const day = Number(m[3])
  const hour = Number(m[4] ?? 0); const minute = Number(m[5] ?? 0); const second = Number(m[6] ?? 0)
  const ms = m[7] === undefined ? 0 : Number(m[7].padEnd(3, '0'))
  if (year < 1 || month < 1 || month > 12 || day < 1) return undefined
  if (day > (month === 2 && isLeap(year) ? 29 : MONTH_DAYS[month - 1]!)) return undefined
  if (hour > 23 || minute > 59 || second > 59) return undefined
  let offset = 0
  const tz = m[8]
  if (tz !== undefined && tz !== 'Z') {
    const oh = Number(tz.slice(1, 3)); const om = Number(tz.slice(4, 6))
    if (oh > 23 || om > 59) return undefined
    offset = (tz[0] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000
  }
  return daysFromCivil(year, month, day) * 86_400_000 + hour * 3_600_000 + minute * 60_000 + second * 1000 + ms - offset
}
