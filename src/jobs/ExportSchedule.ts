/**
 * The midnight export's schedule (SPEC §6): at start, and then at 00:01 every day in
 * `EXPORT_TZ` (`Schedule.cron("1 0 * * *", tz)`), a *catch-up*: under the cluster-wide
 * export lock, the runs a dead process left `running` are failed and its staging folders
 * removed, then every pending day (`ExportCalendar.pendingDays`: from the day after the
 * last succeeded export, or the earliest checkout's day, through the last day whose 00:01
 * has passed, without a succeeded run; and any earlier day whose runs all failed) is
 * exported once, oldest first. A process that does not get the lock does nothing until the
 * next tick; a failed day is retried at the next start or tick.
 *
 * Processing time comes from `Clock` only, so `TestClock` drives it; the export itself is
 * passed in (`ExportJobs`, which `MidnightExport` is), so the schedule is tested without
 * PostgreSQL.
 *
 * @since 0.1.0
 */
import { Cause, Clock, Cron, Effect, Option, Result, Schedule } from "effect"
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
}

export interface ScheduleOptions {
  /** `EXPORT_TZ` */
  readonly timeZone: string
}

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

/** One catch-up now: the days due and not yet exported, under the lock; never fails (errors are logged and shown). */
export const catchUp = <E>(jobs: ExportJobs<E>, options: ScheduleOptions, status: ScheduledJobStatus): Effect.Effect<CatchUp> =>
  Effect.gen(function*() {
    const succeeded: Array<Day> = []
    const failed: Array<Day> = []
    const locked = yield* jobs.withLock(Effect.gen(function*() {
      yield* jobs.recover
      const now = yield* Clock.currentTimeMillis
      const days = pendingDays(yield* jobs.history, lastDueDay(now, options.timeZone))
      if (days.length > 1) yield* Effect.logInfo(`midnight export: catching up ${days.length} days, ${days[0]} to ${days[days.length - 1]}`)
      for (const day of days) {
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
    const tick = catchUp(jobs, options, status).pipe(Effect.andThen(next))
    yield* next
    yield* tick
    yield* Effect.schedule(tick, Schedule.cron(cron.success))
  }).pipe(Effect.orDie)

/**
 * The daemon's schedule: `run` over the real export on the pool in context, its state in
 * `status` (the daemon passes `stats.scheduledJob(JOB_NAME)`, which the status page shows).
 */
export const runOnDatabase = (options: MidnightExport.ExportOptions, status: ScheduledJobStatus): Effect.Effect<void, never, SqlClient.SqlClient> =>
  Effect.flatMap(MidnightExport.make(options), (jobs) => run(jobs, { timeZone: options.timeZone }, status))
