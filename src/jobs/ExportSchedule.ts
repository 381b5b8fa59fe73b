/**
 * The midnight export's schedule (SPEC §6): at start, and then at 00:01 every day in
 * `EXPORT_TZ` (`Schedule.cron("1 0 * * *", tz)`), a *catch-up*: under the cluster-wide
 * export lock, the runs a dead process left `running` are failed and its staging folders
 * removed; once the checkouts of the last due day that the engine has read are written (the
 * watermark has passed its end), every pending day (`ExportCalendar.pendingDays`: from the
 * day after the last succeeded export, or the earliest checkout's day, through the last day
 * whose 00:01 has passed, without a succeeded run; and any earlier day whose runs all
 * failed; at 00:01 the day that just ended, always) is exported once, oldest first. A process that does not get the lock does nothing until the
 * next tick; a failed day is retried at the next start or tick.
 *
 * Processing time comes from `Clock` only, so `TestClock` drives it; the export itself is
 * passed in (`ExportJobs`, which `MidnightExport` is), so the schedule is tested without
 * PostgreSQL.
 *
 * @since 0.1.0
 */
import { Cause, Clock, Cron, Duration, Effect, Option, Result, Schedule } from "effect"
import type { SqlClient } from "effect/sql"
import type { ScheduledJobStatus } from "../engine/EngineStats.ts"
import { type Day, EXPORT_CRON, type ExportHistory, lastDueDay, pendingDays } from "./ExportCalendar.ts"
import * as MidnightExport from "./MidnightExport.ts"

/** The name the status page shows. */
export const JOB_NAME = "midnight-export"

/** What the schedule needs of the export (`MidnightExport`'s service has it all). */
export interface ExportJobs<E = unknown> {
  readonly withLock: <A, E2, R>(effect: Effect.Effect<A, E2, R>) => Effect.Effect<Option.Option<A>, E | E2, R>
  readonly recover: Effect.Effect<void, E>
  readonly history: Effect.Effect<ExportHistory, E>
  readonly exportDay: (day: Day) => Effect.Effect<{ readonly rows: number }, E>
  /**
   * Whether every checkout of `day` (and of every day before it) that the engine has read is
   * written: the global watermark has passed the day's end, or every task has released all
   * it read. Absent: always (nothing is being read beside the export).
   */
  readonly complete?: (day: Day) => Effect.Effect<boolean, E>
}

export interface ScheduleOptions {
  /** `EXPORT_TZ` */
  readonly timeZone: string
  /**
   * How long a catch-up waits for a day to be complete before it exports what is written
   * (default `COMPLETE_WAIT_MS`). The daemon passes I + 15 s: once the input goes quiet the
   * engine releases everything it read within I and a report, so a day still incomplete after
   * that is one whose events are still arriving; it is exported at once (within its 00:01
   * minute) and again, stale, as the rest is written.
   */
  readonly completeWaitMs?: number
  /** how often the history is read for stale days (exported before late checkouts were written for them); default 1 minute */
  readonly recheckEveryMs?: number
}

/** How long a catch-up waits for a day's checkouts, given I (`IDLE_TIMEOUT_MS`): I + 15 s. */
export const completeWaitFor = (idleTimeoutMs: number): number => idleTimeoutMs + 15_000

/** How long a catch-up waits for a day's checkouts by default: at I's default (30 s). */
export const COMPLETE_WAIT_MS = completeWaitFor(30_000)

const message = (e: unknown): string =>
  (e instanceof Error ? e.message : typeof e === "object" && e !== null && "message" in e ? String((e as { message: unknown }).message) : String(e))
    .replace(/\s*\n\s*/g, " ").trim()

/** What one catch-up did. */
export interface CatchUp {
  /** false: another process holds the lock */
  readonly ran: boolean
  readonly succeeded: ReadonlyArray<Day>
  readonly failed: ReadonlyArray<Day>
}

/**
 * Waits (checking every second) until `day`'s checkouts are all written, at most until
 * `deadline`; false when it gave up waiting.
 */
const awaitComplete = <E>(complete: (day: Day) => Effect.Effect<boolean, E>, day: Day, deadline: number, status: ScheduledJobStatus) =>
  Effect.gen(function*() {
    for (;;) {
      if (yield* complete(day)) return true
      if ((yield* Clock.currentTimeMillis) >= deadline) return false
      status.lastResult = `waiting for ${day}: checkouts read are not all written yet (the watermark has not passed the day's end)`
      yield* Effect.sleep(Duration.seconds(1))
    }
  })

/**
 * One catch-up now: the days due and not yet exported, under the lock; never fails (errors
 * are logged and shown). Before each day it waits until the day's checkouts that the engine
 * has read are written (at 00:01 the watermark is usually past midnight already; a backlog
 * just read may still be held until its partitions are idle), at most `completeWaitMs`. At
 * a `tick` (00:01) the day that just ended is exported even when no checkout was ever
 * written ("no sales" differs from "not exported").
 */
export const catchUp = <E>(jobs: ExportJobs<E>, options: ScheduleOptions, status: ScheduledJobStatus, tick = false): Effect.Effect<CatchUp> =>
  Effect.gen(function*() {
    const succeeded: Array<Day> = []
    const failed: Array<Day> = []
    const locked = yield* jobs.withLock(Effect.gen(function*() {
      yield* jobs.recover
      const through = lastDueDay(yield* Clock.currentTimeMillis, options.timeZone)
      const history = yield* jobs.history
      const due = pendingDays(history, through)
      const days = tick && !due.includes(through) && !history.succeeded.includes(through) ? [...due, through] : due
      if (days.length > 1) yield* Effect.logInfo(`midnight export: catching up ${days.length} days, ${days[0]} to ${days[days.length - 1]}`)
      const waitMs = options.completeWaitMs ?? COMPLETE_WAIT_MS
      const deadline = (yield* Clock.currentTimeMillis) + waitMs
      let waiting = jobs.complete
      for (const day of days) {
        // a day complete, every earlier one is: only the first incomplete day waits (days
        // long past go at once), and after the deadline none does
        if (waiting !== undefined && !(yield* awaitComplete(waiting, day, deadline, status))) {
          yield* Effect.logWarning(`midnight export: after ${Math.round(waitMs / 1000)} s the checkouts of ${day} read so far are still not all written (the watermark has not passed the day's end); exporting what is written`)
          waiting = undefined
        }
        status.lastRunAt = yield* Clock.currentTimeMillis
        const r = yield* Effect.result(jobs.exportDay(day))
        if (Result.isSuccess(r)) {
          succeeded.push(day)
          status.lastResult = `succeeded: ${day}, ${r.success.rows.toLocaleString("en-US")} rows`
          yield* Effect.logInfo(`midnight export of ${day}: ${r.success.rows} rows`)
        } else {
          failed.push(day)
          status.lastResult = `failed: ${day}: ${message(r.failure)}`
          yield* Effect.logWarning(`midnight export of ${day} failed (retried at the next start or tick): ${message(r.failure)}`)
        }
      }
    }))
    if (Option.isNone(locked)) status.lastResult = "standby: another process holds the export lock"
    return { ran: Option.isSome(locked), succeeded, failed }
  }).pipe(
    Effect.catchCause((cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause)
      const why = message(Cause.squash(cause))
      status.lastResult = `failed: ${why}`
      return Effect.as(Effect.logWarning(`midnight export could not run (retried at the next tick): ${why}`), { ran: false, succeeded: [], failed: [] })
    }),
    Effect.orDie
  )

/**
 * The schedule for the life of the scope: a catch-up at once, then one at every 00:01 in
 * `options.timeZone`. Fork it (`Effect.forkScoped`); it never fails.
 */
export const run = <E>(jobs: ExportJobs<E>, options: ScheduleOptions, status: ScheduledJobStatus): Effect.Effect<void> =>
  Effect.gen(function*() {
    const cron = Cron.parse(EXPORT_CRON, options.timeZone)
    if (Result.isFailure(cron)) return yield* Effect.die(cron.failure)
    const next = Effect.map(Clock.currentTimeMillis, (now) => {
      status.nextRunAt = Cron.next(cron.success, now).getTime()
    })
    yield* next
    yield* catchUp(jobs, options, status).pipe(Effect.andThen(next))
    // between ticks: a day exported before a late checkout was written for it is exported
    // again within a minute (the history is read without the lock; only then is it taken)
    const recheck = Effect.gen(function*() {
      const through = lastDueDay(yield* Clock.currentTimeMillis, options.timeZone)
      const history = yield* jobs.history
      if ((history.stale ?? []).some((d) => d <= through)) yield* catchUp(jobs, options, status)
    }).pipe(Effect.catchCause((cause) =>
      Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : Effect.logDebug("midnight export: cannot read the history for stale days", cause)))
    yield* Effect.forkChild(Effect.schedule(recheck, Schedule.spaced(Duration.millis(options.recheckEveryMs ?? 60_000))))
    yield* Effect.schedule(catchUp(jobs, options, status, true).pipe(Effect.andThen(next)), Schedule.cron(cron.success))
  }).pipe(Effect.orDie)

/**
 * The daemon's schedule: `run` over the real export on the pool in context, its state in
 * `status` (the daemon passes `stats.scheduledJob(JOB_NAME)`, which the status page shows).
 */
export const runOnDatabase = (
  options: MidnightExport.ExportOptions,
  status: ScheduledJobStatus,
  schedule: Omit<ScheduleOptions, "timeZone"> = {}
): Effect.Effect<void, never, SqlClient.SqlClient> =>
  Effect.flatMap(MidnightExport.make(options), (jobs) => run(jobs, { ...schedule, timeZone: options.timeZone }, status))
