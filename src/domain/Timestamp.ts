/**
 * Event timestamps as SPEC §1 accepts them: ISO-8601 with `Z` or an offset, and the naive
 * `YYYY-MM-DD HH:MM:SS[.fff]` form (also with a `T`), read as UTC. Parsed by hand because
 * `Date.parse` reads naive strings in the host's zone and accepts forms the SPEC does not.
 */

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}(?::?\d{2})?)?$/

/** Epoch milliseconds, or `undefined` when `text` is not a valid timestamp. Sub-millisecond digits are truncated. */
export const parseTimestamp = (text: string): number | undefined => {
  const m = TIMESTAMP.exec(text)
  if (m === null) return undefined
  const year = +m[1]!, month = +m[2]!, day = +m[3]!, hour = +m[4]!, minute = +m[5]!, second = +m[6]!
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined
  const millis = m[7] === undefined ? 0 : +m[7].slice(0, 3).padEnd(3, "0")
  const local = Date.UTC(year, month - 1, day, hour, minute, second, millis)
  if (new Date(local).getUTCDate() !== day) return undefined // 2026-02-30
  const zone = m[8]
  if (zone === undefined || zone === "Z" || zone === "z") return local
  const sign = zone[0] === "-" ? -1 : 1
  const digits = zone.slice(1).replace(":", "")
  const offsetHours = +digits.slice(0, 2), offsetMinutes = digits.length > 2 ? +digits.slice(2, 4) : 0
  if (offsetHours > 23 || offsetMinutes > 59) return undefined
  return local - sign * (offsetHours * 60 + offsetMinutes) * 60_000
}

/** ISO-8601 in UTC with milliseconds, as PostgreSQL and humans read it. */
export const formatTimestamp = (ms: number): string => new Date(ms).toISOString()
