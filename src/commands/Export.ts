/**
 * `insights export --date YYYY-MM-DD`: the midnight export of one day, by hand (SPEC §6, §9).
 * The same code as the schedule (`MidnightExport.exportDay`), under the same lock (it waits
 * for a run another process holds), recorded in `shop.export_runs` like any run; it exports
 * the day even if it already has a succeeded run. Progress on stderr for long days; one
 * summary line at the end.
 */
import { Clock, Console, Effect, Option } from "effect"
import type { EngineConfig } from "../config.ts"
import type { Day } from "../jobs/ExportCalendar.ts"
import * as MidnightExport from "../jobs/MidnightExport.ts"
import * as Progress from "./Progress.ts"

const count = (n: number) => n.toLocaleString("en-US")

/** The summary line of a run. */
export const describe = (r: MidnightExport.ExportResult, timeZone: string, elapsedMs: number): string => {
  const s = r.summary
  const share = s.attributedShare === null ? "–" : `${(s.attributedShare * 100).toFixed(1)} %`
  return `exported ${r.day} (${timeZone}): ${count(s.checkouts)} checkouts, ${count(s.paidCheckouts)} paid, ${count(s.units)} units, ` +
    `revenue ${s.revenue}, profit ${s.profit}, attributed ${share} -> ${r.checkoutsFile}, ${r.summaryFile} ` +
    `(run ${r.runId}, ${(elapsedMs / 1000).toFixed(1)} s)`
}

export const exportDay = (config: EngineConfig, day: Day) =>
  Effect.gen(function*() {
    const options = { lakeDir: config.lakeDir, timeZone: config.exportTz }
    const jobs = yield* MidnightExport.make(options)
    const started = yield* Clock.currentTimeMillis
    const locked = yield* jobs.withLock(
      Effect.gen(function*() {
        yield* jobs.recover
        return yield* Effect.scoped(Effect.gen(function*() {
          const progress = yield* Progress.make({ label: "export", unit: "rows" })
          return yield* jobs.exportDay(day, progress)
        })) // the bar ends before the summary line
      }),
      { wait: true }
    )
    const result = Option.getOrThrow(locked) // waited for the lock: always there
    yield* Console.error(describe(result, config.exportTz, (yield* Clock.currentTimeMillis) - started))
    return result
  }).pipe(Effect.mapError((e) => new Error(`export of ${day} failed: ${e.message}`)))
