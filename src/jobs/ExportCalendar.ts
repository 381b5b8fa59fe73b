/**
 * The midnight export's calendar (SPEC §6), as pure functions of a processing-time instant
 * and `EXPORT_TZ`: which local day an instant falls on, which days are due (a day D is due
 * once D + 1 00:01 has passed in the zone), and which days a start or a tick exports.
 *
 * Days are `YYYY-MM-DD` strings of the zone's calendar; day arithmetic is on the calendar
 * (a DST day of 23 or 25 hours is still one day).
 *
 * @since 0.1.0
 */

/** `YYYY-MM-DD` */
export type Day = string

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/

/** true when `text` is a real calendar day written `YYYY-MM-DD` */
export const isDay = (text: string): text is Day => {
  const m = DAY.exec(text)
  if (m === null) return false
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))
  return new Date(ms).toISOString().slice(0, 10) === text
}

/** `day` + `n` calendar days */
export const addDays = (day: Day, n: number): Day => {
  const m = DAY.exec(day)
  if (m === null) throw new Error(`not a day: ${day}`)
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + n)).toISOString().slice(0, 10)
}

/**
 * The canonical name of time zone `tz` (`asia/tokyo` → `Asia/Tokyo`), or undefined when Intl
 * (and so Effect's Cron) does not know it. Only named zones such as `UTC`, `Europe/Paris`
 * or `Asia/Tokyo` are taken; offsets such as `+09:00` are refused, because PostgreSQL's
 * `AT TIME ZONE` reads them the POSIX way, east and west swapped.
 */
export const canonicalTimeZone = (tz: string): string | undefined => {
  if (!/^[A-Za-z]/.test(tz)) return undefined
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: tz }).resolvedOptions().timeZone
  } catch {
    return undefined
  }
}

const formatter = (tz: string): Intl.DateTimeFormat =>
  new Intl.DateTimeFormat("en-US", {
    timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit"
  })

/** The wall clock of instant `ms` in `tz`: its day and the minutes since that day's midnight. */
export const localTime = (ms: number, tz: string): { readonly day: Day; readonly minutes: number } => {
  const parts: Record<string, string> = {}
  for (const p of formatter(tz).formatToParts(ms)) parts[p.type] = p.value
  return {
    day: `${parts["year"]!.padStart(4, "0")}-${parts["month"]}-${parts["day"]}`,
    minutes: Number(parts["hour"]) * 60 + Number(parts["minute"])
  }
}

/** Minutes after local midnight at which the previous day is exported (00:01). */
export const EXPORT_MINUTE = 1
/** The schedule as a cron expression: 00:01 every day (read in `EXPORT_TZ`). */
export const EXPORT_CRON = "1 0 * * *"

/** The last day whose export time (the next day's 00:01 in `tz`) is at or before `ms`. */
export const lastDueDay = (ms: number, tz: string): Day => {
  const now = localTime(ms, tz)
  return addDays(now.day, now.minutes >= EXPORT_MINUTE ? -1 : -2)
}

/** What the catch-up needs to know of the past. */
export interface ExportHistory {
  /** the local day (in `EXPORT_TZ`) of the earliest checkout, if any */
  readonly earliestCheckoutDay: Day | undefined
  /** days with at least one succeeded run */
  readonly succeeded: ReadonlyArray<Day>
  /** days with runs, none of which succeeded (failed, or left `running` by a process that died) */
  readonly unsucceeded: ReadonlyArray<Day>
  /** days exported before checkouts were written for them (late ones): exported again */
  readonly stale?: ReadonlyArray<Day>
}

/**
 * The days a start or a tick exports, oldest first: every day from the day after the last
 * succeeded export (or, before any, from the earliest checkout's day) through `through`
 * that has no succeeded run, every earlier day whose runs all failed (a failed run is
 * retried at the next start or tick), and every stale day (checkouts written since its run).
 */
export const pendingDays = (history: ExportHistory, through: Day): ReadonlyArray<Day> => {
  const done = new Set(history.succeeded)
  const out = new Set<Day>()
  for (const d of history.unsucceeded) if (d <= through && !done.has(d)) out.add(d)
  for (const d of history.stale ?? []) if (d <= through) out.add(d)
  const lastSucceeded = history.succeeded.reduce<Day | undefined>((a, d) => a === undefined || d > a ? d : a, undefined)
  const from = lastSucceeded !== undefined ? addDays(lastSucceeded, 1) : history.earliestCheckoutDay
  if (from !== undefined) {
    for (let d = from; d <= through; d = addDays(d, 1)) if (!done.has(d)) out.add(d)
  }
  return [...out].sort()
}
