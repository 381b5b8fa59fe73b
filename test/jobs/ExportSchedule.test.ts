/**
 * The midnight export's schedule under TestClock (SPEC §6), with the export itself faked
 * (an in-memory run table): it fires at 00:01 in EXPORT_TZ and at no other minute, in UTC
 * and in Asia/Tokyo; a start after two missed midnights exports both days, once each,
 * oldest first; a failed day is recorded failed and retried at the next tick; a process
 * without the lock exports nothing. The calendar's pure functions are checked with plain
 * `it`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Option } from "effect"
import { TestClock } from "effect/testing"
import type { ScheduledJobStatus } from "../../src/engine/EngineStats.ts"
import { addDays, canonicalTimeZone, type Day, isDay, lastDueDay, localTime, pendingDays } from "../../src/jobs/ExportCalendar.ts"
import * as ExportSchedule from "../../src/jobs/ExportSchedule.ts"

const iso = (ms: number) => new Date(ms).toISOString()

interface FakeRun {
  readonly day: Day
  readonly status: "succeeded" | "failed"
  readonly at: string
}

/** An export that records its runs in memory, as MidnightExport records them in export_runs. */
const fake = (init: {
  readonly succeeded?: ReadonlyArray<Day>
  readonly earliest?: Day
  /** days whose next attempt fails */
  readonly failNext?: ReadonlyArray<Day>
  /** false: another process holds the lock */
  readonly lockFree?: () => boolean
  /** history fails this many times */
  readonly historyFailures?: number
  /** whether the day's checkouts read so far are all written (absent: the export does not ask) */
  readonly complete?: (day: Day) => boolean
  /** days exported before a late checkout was written for them */
  readonly stale?: () => ReadonlyArray<Day>
}) => {
  const runs: Array<FakeRun> = (init.succeeded ?? []).map((day) => ({ day, status: "succeeded", at: "before" }))
  const failNext = new Set(init.failNext ?? [])
  const ticks: Array<string> = []
  let historyFailures = init.historyFailures ?? 0
  const asked: Array<string> = []
  const jobs: ExportSchedule.ExportJobs<Error> = {
    ...(init.complete === undefined ? {} : {
      complete: (day: Day) => Effect.gen(function*() {
        asked.push(`${day}@${iso(yield* Clock.currentTimeMillis)}`)
        return init.complete!(day)
      })
    }),
    withLock: (effect) =>
      Effect.gen(function*() {
        ticks.push(iso(yield* Clock.currentTimeMillis))
        if (init.lockFree !== undefined && !init.lockFree()) return Option.none()
        return Option.some(yield* effect)
      }),
    recover: Effect.void,
    history: Effect.suspend(() => {
      if (historyFailures > 0) {
        historyFailures--
        return Effect.fail(new Error("connection refused"))
      }
      const ok = new Set(runs.filter((r) => r.status === "succeeded").map((r) => r.day))
      return Effect.succeed({
        earliestCheckoutDay: init.earliest,
        succeeded: [...ok],
        unsucceeded: [...new Set(runs.filter((r) => !ok.has(r.day)).map((r) => r.day))],
        stale: init.stale?.() ?? []
      })
    }),
    exportDay: (day) =>
      Effect.gen(function*() {
        const at = iso(yield* Clock.currentTimeMillis)
        if (failNext.delete(day)) {
          runs.push({ day, status: "failed", at })
          return yield* Effect.fail(new Error("disk full"))
        }
        runs.push({ day, status: "succeeded", at })
        return { rows: 7 }
      })
  }
  const exported = () => runs.filter((r) => r.at !== "before")
  return { jobs, runs, exported, ticks, asked }
}

const newStatus = (): ScheduledJobStatus => ({ name: ExportSchedule.JOB_NAME, lastRunAt: undefined, lastResult: undefined, nextRunAt: undefined })

const start = (f: ReturnType<typeof fake>, timeZone: string, status = newStatus(), options: { readonly completeWaitMs?: number } = {}) =>
  Effect.gen(function*() {
    yield* Effect.forkScoped(ExportSchedule.run(f.jobs, { timeZone, ...options }, status))
    yield* TestClock.adjust(0) // the start's catch-up
    return status
  })

describe("midnight export schedule (TestClock)", () => {
  it.effect("fires at 00:01 UTC, not at 00:00 or 00:02, and exports the day that ended", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2026-03-01T23:59:00Z"))
      const f = fake({ succeeded: ["2026-02-28"] })
      const status = yield* start(f, "UTC")
      assert.deepStrictEqual(f.ticks, ["2026-03-01T23:59:00.000Z"], "the start's catch-up")
      assert.deepStrictEqual(f.exported(), [], "nothing due at start")
      assert.strictEqual(iso(status.nextRunAt!), "2026-03-02T00:01:00.000Z")
      yield* TestClock.adjust("1 minute") // 00:00
      assert.deepStrictEqual(f.ticks.length, 1, "no tick at 00:00")
      yield* TestClock.adjust("59 seconds") // 00:00:59
      assert.deepStrictEqual(f.exported(), [])
      yield* TestClock.adjust("1 second") // 00:01
      assert.deepStrictEqual(f.exported(), [{ day: "2026-03-01", status: "succeeded", at: "2026-03-02T00:01:00.000Z" }])
      yield* TestClock.adjust("1 minute") // 00:02
      assert.deepStrictEqual(f.ticks, ["2026-03-01T23:59:00.000Z", "2026-03-02T00:01:00.000Z"], "no tick at 00:02")
      assert.strictEqual(iso(status.nextRunAt!), "2026-03-03T00:01:00.000Z")
      assert.strictEqual(iso(status.lastRunAt!), "2026-03-02T00:01:00.000Z")
      assert.strictEqual(status.lastResult, "succeeded: 2026-03-01, 7 rows")
      yield* TestClock.adjust("1 day")
      assert.deepStrictEqual(f.exported().map((r) => [r.day, r.at]), [
        ["2026-03-01", "2026-03-02T00:01:00.000Z"],
        ["2026-03-02", "2026-03-03T00:01:00.000Z"]
      ])
    }))

  it.effect("in Asia/Tokyo it fires at 00:01 JST (15:01Z) and exports the Tokyo day", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2026-03-01T14:59:00Z")) // 23:59 JST
      const f = fake({ succeeded: ["2026-02-28"] })
      const status = yield* start(f, "Asia/Tokyo")
      assert.strictEqual(iso(status.nextRunAt!), "2026-03-01T15:01:00.000Z")
      yield* TestClock.adjust("1 minute") // 00:00 JST
      assert.deepStrictEqual(f.exported(), [])
      assert.strictEqual(f.ticks.length, 1)
      yield* TestClock.adjust("1 minute") // 00:01 JST
      assert.deepStrictEqual(f.exported(), [{ day: "2026-03-01", status: "succeeded", at: "2026-03-01T15:01:00.000Z" }])
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(f.ticks.length, 2, "no tick at 00:02 JST")
      yield* TestClock.adjust("9 hours") // past 00:01Z: not a tick in Tokyo
      assert.deepStrictEqual(f.ticks, ["2026-03-01T14:59:00.000Z", "2026-03-01T15:01:00.000Z"])
      yield* TestClock.adjust("15 hours")
      assert.deepStrictEqual(f.exported().map((r) => [r.day, r.at]), [
        ["2026-03-01", "2026-03-01T15:01:00.000Z"],
        ["2026-03-02", "2026-03-02T15:01:00.000Z"]
      ])
    }))

  it.effect("a process down over two midnights exports both days at start, once each, oldest first", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2026-03-03T10:00:00Z"))
      const f = fake({ succeeded: ["2026-02-28"] })
      yield* start(f, "UTC")
      assert.deepStrictEqual(f.exported().map((r) => [r.day, r.at]), [
        ["2026-03-01", "2026-03-03T10:00:00.000Z"],
        ["2026-03-02", "2026-03-03T10:00:00.000Z"]
      ])
      yield* TestClock.adjust("841 minutes") // 2026-03-04 00:01
      assert.deepStrictEqual(f.exported().map((r) => r.day), ["2026-03-01", "2026-03-02", "2026-03-03"], "each day once")
    }))

  it.effect("with no export yet, the catch-up starts at the earliest checkout's day; before 00:01 the day before yesterday is the last due", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2026-03-01T00:00:30Z"))
      const f = fake({ earliest: "2026-02-26" })
      yield* start(f, "UTC")
      assert.deepStrictEqual(f.exported().map((r) => r.day), ["2026-02-26", "2026-02-27"])
      yield* TestClock.adjust("30 seconds")
      assert.deepStrictEqual(f.exported().map((r) => r.day), ["2026-02-26", "2026-02-27", "2026-02-28"])
    }))

  it.effect("at 00:01 it waits until the day's checkouts read so far are written (the watermark past midnight), then exports the day", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2026-03-01T23:59:00Z"))
      let written = false
      const f = fake({ succeeded: ["2026-02-28"], complete: (day) => day < "2026-03-01" || written })
      const status = yield* start(f, "UTC")
      yield* TestClock.adjust("2 minutes") // 00:01:00: due, but a backlog just read is still held
      assert.deepStrictEqual(f.exported(), [], "not before its checkouts are written")
      assert.match(status.lastResult ?? "", /^waiting for 2026-03-01: /)
      yield* TestClock.adjust("6 seconds")
      assert.deepStrictEqual(f.exported(), [])
      written = true
      yield* TestClock.adjust("1 second") // 00:01:07: asked again, complete
      assert.deepStrictEqual(f.exported(), [{ day: "2026-03-01", status: "succeeded", at: "2026-03-02T00:01:07.000Z" }])
      assert.deepStrictEqual(f.asked[0], "2026-03-01@2026-03-02T00:01:00.000Z", "nothing due at start: nothing asked; the tick asks about the day that ended")
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(f.exported().length, 1, "once")
    }))

  it.effect("a start days later: the days long past go at once, only the last waits for its checkouts", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2026-03-04T10:00:00Z"))
      let caughtUp = false // the restarted engine has not yet re-read the end of 03-03
      const f = fake({ succeeded: ["2026-02-28"], complete: (day) => day < "2026-03-03" || caughtUp })
      yield* start(f, "UTC")
      assert.deepStrictEqual(f.exported().map((r) => [r.day, r.at]), [
        ["2026-03-01", "2026-03-04T10:00:00.000Z"],
        ["2026-03-02", "2026-03-04T10:00:00.000Z"]
      ])
      yield* TestClock.adjust("4 seconds")
      caughtUp = true
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(f.exported().map((r) => [r.day, r.at]).slice(2), [["2026-03-03", "2026-03-04T10:00:05.000Z"]])
    }))

  it.effect("a day exported before a late checkout was written for it is exported again within a minute, once", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2026-03-02T10:00:00Z"))
      let stale: Array<Day> = []
      const f = fake({ succeeded: ["2026-02-27", "2026-02-28", "2026-03-01"], stale: () => stale })
      yield* start(f, "UTC")
      yield* TestClock.adjust("5 minutes")
      assert.deepStrictEqual(f.exported(), [])
      assert.strictEqual(f.ticks.length, 1, "no lock taken while nothing is stale")
      stale = ["2026-02-28"] // a late checkout of 02-28 written at 10:05
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(f.exported().map((r) => [r.day, r.at]), [["2026-02-28", "2026-03-02T10:06:00.000Z"]])
      stale = []
      yield* TestClock.adjust("10 minutes")
      assert.strictEqual(f.exported().length, 1)
    }))

  it.effect("a day that never completes (its watermark stuck) is exported after completeWaitMs with what is written", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2026-03-01T23:59:00Z"))
      const f = fake({ succeeded: ["2026-02-28"], complete: (day) => day < "2026-03-01" })
      yield* start(f, "UTC", newStatus(), { completeWaitMs: 120_000 })
      yield* TestClock.adjust("3 minutes") // 00:02:00
      assert.deepStrictEqual(f.exported(), [])
      yield* TestClock.adjust("1 minute") // 00:03:00: two minutes of waiting
      assert.deepStrictEqual(f.exported(), [{ day: "2026-03-01", status: "succeeded", at: "2026-03-02T00:03:00.000Z" }])
    }))

  it.effect("at 00:01 the day that ended is exported even when no checkout was ever written: no sales is not 'not exported'", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2026-03-01T23:00:00Z"))
      const f = fake({})
      yield* start(f, "UTC")
      assert.deepStrictEqual(f.exported(), [], "the start exports from the earliest checkout's day: none")
      yield* TestClock.adjust("61 minutes")
      assert.deepStrictEqual(f.exported(), [{ day: "2026-03-01", status: "succeeded", at: "2026-03-02T00:01:00.000Z" }])
    }))

  it.effect("a failed run is recorded failed and retried at the next tick", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2026-03-01T23:59:00Z"))
      const f = fake({ succeeded: ["2026-02-28"], failNext: ["2026-03-01"] })
      const status = yield* start(f, "UTC")
      yield* TestClock.adjust("2 minutes")
      assert.deepStrictEqual(f.exported(), [{ day: "2026-03-01", status: "failed", at: "2026-03-02T00:01:00.000Z" }])
      assert.strictEqual(status.lastResult, "failed: 2026-03-01: disk full")
      assert.strictEqual(iso(status.nextRunAt!), "2026-03-03T00:01:00.000Z", "the schedule goes on after a failure")
      yield* TestClock.adjust("1 day")
      assert.deepStrictEqual(f.exported(), [
        { day: "2026-03-01", status: "failed", at: "2026-03-02T00:01:00.000Z" },
        { day: "2026-03-01", status: "succeeded", at: "2026-03-03T00:01:00.000Z" },
        { day: "2026-03-02", status: "succeeded", at: "2026-03-03T00:01:00.000Z" }
      ])
      assert.strictEqual(status.lastResult, "succeeded: 2026-03-02, 7 rows")
    }))

  it.effect("a failed day older than the last success is retried at the next start", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2026-03-05T08:00:00Z"))
      const f = fake({ succeeded: ["2026-03-01", "2026-03-03", "2026-03-04"] })
      f.runs.push({ day: "2026-03-02", status: "failed", at: "before" })
      yield* start(f, "UTC")
      assert.deepStrictEqual(f.exported().map((r) => [r.day, r.status]), [["2026-03-02", "succeeded"]])
    }))

  it.effect("without the lock nothing is exported; once it is free, the next tick catches up", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2026-03-03T10:00:00Z"))
      let free = false
      const f = fake({ succeeded: ["2026-02-28"], lockFree: () => free })
      const status = yield* start(f, "UTC")
      assert.deepStrictEqual(f.exported(), [])
      assert.strictEqual(status.lastResult, "standby: another process holds the export lock")
      free = true
      yield* TestClock.adjust("841 minutes")
      assert.deepStrictEqual(f.exported().map((r) => r.day), ["2026-03-01", "2026-03-02", "2026-03-03"])
    }))

  it.effect("a database that does not answer is shown and retried at the next tick; the schedule survives", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2026-03-03T10:00:00Z"))
      const f = fake({ succeeded: ["2026-03-01"], historyFailures: 1 })
      const status = yield* start(f, "UTC")
      assert.deepStrictEqual(f.exported(), [])
      assert.strictEqual(status.lastResult, "failed: connection refused")
      yield* TestClock.adjust("841 minutes")
      assert.deepStrictEqual(f.exported().map((r) => r.day), ["2026-03-02", "2026-03-03"])
    }))
})

describe("export calendar", () => {
  it("local day and minutes of an instant", () => {
    assert.deepStrictEqual(localTime(Date.parse("2026-03-01T15:01:00Z"), "Asia/Tokyo"), { day: "2026-03-02", minutes: 1 })
    assert.deepStrictEqual(localTime(Date.parse("2026-03-01T00:00:00Z"), "UTC"), { day: "2026-03-01", minutes: 0 })
    assert.deepStrictEqual(localTime(Date.parse("2026-07-01T03:59:00Z"), "America/New_York"), { day: "2026-06-30", minutes: 23 * 60 + 59 })
  })

  it("the last due day flips at 00:01 local time", () => {
    assert.strictEqual(lastDueDay(Date.parse("2026-03-02T00:00:59.999Z"), "UTC"), "2026-02-28")
    assert.strictEqual(lastDueDay(Date.parse("2026-03-02T00:01:00Z"), "UTC"), "2026-03-01")
    assert.strictEqual(lastDueDay(Date.parse("2026-03-01T15:00:59Z"), "Asia/Tokyo"), "2026-02-28")
    assert.strictEqual(lastDueDay(Date.parse("2026-03-01T15:01:00Z"), "Asia/Tokyo"), "2026-03-01")
  })

  it("days: validity and calendar arithmetic", () => {
    assert.isTrue(isDay("2028-02-29"))
    assert.isFalse(isDay("2026-02-29"))
    assert.isFalse(isDay("2026-3-1"))
    assert.strictEqual(addDays("2026-02-28", 1), "2026-03-01")
    assert.strictEqual(addDays("2026-01-01", -1), "2025-12-31")
  })

  it("time zones: names canonical, unknown names and offsets refused", () => {
    assert.strictEqual(canonicalTimeZone("asia/tokyo"), "Asia/Tokyo")
    assert.strictEqual(canonicalTimeZone("UTC"), "UTC")
    assert.isUndefined(canonicalTimeZone("Mars/Olympus"))
    assert.isUndefined(canonicalTimeZone("+09:00"))
    assert.isUndefined(canonicalTimeZone(""))
  })

  it("pending days: after the last success, or from the earliest checkout; failed days retried; oldest first", () => {
    assert.deepStrictEqual(pendingDays({ earliestCheckoutDay: "2026-01-01", succeeded: ["2026-02-27"], unsucceeded: [] }, "2026-03-01"), ["2026-02-28", "2026-03-01"])
    assert.deepStrictEqual(pendingDays({ earliestCheckoutDay: "2026-02-28", succeeded: [], unsucceeded: [] }, "2026-03-01"), ["2026-02-28", "2026-03-01"])
    assert.deepStrictEqual(pendingDays({ earliestCheckoutDay: undefined, succeeded: [], unsucceeded: [] }, "2026-03-01"), [])
    assert.deepStrictEqual(pendingDays({ earliestCheckoutDay: "2026-01-01", succeeded: ["2026-03-01"], unsucceeded: ["2026-02-20", "2026-03-05"] }, "2026-03-02"), ["2026-02-20", "2026-03-02"])
    assert.deepStrictEqual(pendingDays({ earliestCheckoutDay: "2026-03-05", succeeded: [], unsucceeded: [] }, "2026-03-01"), [], "nothing due yet")
  })
})
