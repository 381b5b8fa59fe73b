/** `insights replay --clicks FILE --checkouts FILE [--users FILE --products FILE]` */
import { Clock, Console, Effect } from "effect"
import type { Scope } from "effect"
import * as fsp from "node:fs/promises"
import type { EngineConfig } from "../config.ts"
import { EngineStats } from "../engine/EngineStats.ts"
import * as Attribution from "../jobs/Attribution.ts"
import * as AttributionPipeline from "../jobs/AttributionPipeline.ts"
import * as HourlyRollup from "../jobs/HourlyRollup.ts"
import { Dimensions } from "../jobs/Dimensions.ts"
import * as ReplaySource from "../sources/ReplaySource.ts"
import * as Progress from "./Progress.ts"

export interface ReplayFiles {
  readonly clicks?: string | undefined
  readonly checkouts?: string | undefined
}

/** Messages in a kcat file, i.e. its lines (a last line without a newline counts): the progress bar's total. */
const countMessages = (path: string): Effect.Effect<number, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const handle = yield* Effect.acquireRelease(
      Effect.tryPromise(() => fsp.open(path, "r")),
      (h) => Effect.promise(() => h.close())
    )
    const buffer = Buffer.allocUnsafe(8 << 20) // few, large reads: the count keeps up with the replay
    let lines = 0
    let last = 10
    for (;;) {
      const { bytesRead } = yield* Effect.tryPromise(() => handle.read(buffer, 0, buffer.length, null))
      if (bytesRead === 0) return lines + (last === 10 ? 0 : 1)
      for (let i = buffer.indexOf(10); i >= 0 && i < bytesRead; i = buffer.indexOf(10, i + 1)) lines++
      last = buffer[bytesRead - 1]!
    }
  }).pipe(Effect.scoped)

export const replay = (config: EngineConfig, files: ReplayFiles) =>
  Effect.gen(function*() {
    const inputs: Array<ReplaySource.ReplayFile> = []
    if (files.clicks !== undefined) inputs.push({ topic: config.clicksTopic, path: files.clicks })
    if (files.checkouts !== undefined) inputs.push({ topic: config.checkoutsTopic, path: files.checkouts })
    const dims = yield* Dimensions
    yield* dims.refresh // dimensions loaded just before (--users/--products) are used from the first row
    const source = yield* ReplaySource.make(inputs)
    const started = yield* Clock.currentTimeMillis
    const stats = new EngineStats()
    yield* Effect.gen(function*() {
      // progress: messages read, against the files' line count (counted alongside, not before)
      const progress = yield* Progress.make({ label: "replay", unit: "messages" })
      yield* Effect.forEach(inputs, (f) => countMessages(f.path)).pipe(
        Effect.tap((counts) => Effect.sync(() => progress.setTotal(counts.reduce((a, b) => a + b, 0)))),
        Effect.ignore,
        Effect.forkScoped
      )
      yield* Progress.poll(progress, () => stats.eventsTotal)
      yield* AttributionPipeline.run(source, config, stats)
    }).pipe(Effect.scoped) // the bar ends before the summary line
    // end of input is end of time: every hour the replay touched is rolled before it exits
    const hours = yield* HourlyRollup.rollDue(source.name, Attribution.JOB, source.partitions.length)
    const seconds = ((yield* Clock.currentTimeMillis) - started) / 1000
    const c = (name: string) => stats.counter(name)
    yield* Console.error(
      `replayed ${stats.eventsTotal} messages in ${seconds.toFixed(1)} s (${Math.round(stats.eventsTotal / Math.max(seconds, 1e-3))}/s): ` +
        `${c("checkouts_written")} checkouts written, ${c("late_clicks")} late clicks, ${c("late_checkouts")} late checkouts, ` +
        `${c("ingest_errors")} ingest errors, ${c("enrichment_misses")} enrichment misses, ${hours} hours rolled up`
    )
    return stats
  }).pipe(Effect.scoped)
