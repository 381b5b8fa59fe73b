/** `insights replay --clicks FILE --checkouts FILE [--users FILE --products FILE]` */
import { Clock, Console, Effect } from "effect"
import type { EngineConfig } from "../config.ts"
import * as AttributionPipeline from "../jobs/AttributionPipeline.ts"
import { Dimensions } from "../jobs/Dimensions.ts"
import * as ReplaySource from "../sources/ReplaySource.ts"

export interface ReplayFiles {
  readonly clicks?: string | undefined
  readonly checkouts?: string | undefined
}

export const replay = (config: EngineConfig, files: ReplayFiles) =>
  Effect.gen(function*() {
    const inputs: Array<ReplaySource.ReplayFile> = []
    if (files.clicks !== undefined) inputs.push({ topic: config.clicksTopic, path: files.clicks })
    if (files.checkouts !== undefined) inputs.push({ topic: config.checkoutsTopic, path: files.checkouts })
    const dims = yield* Dimensions
    yield* dims.refresh // dimensions loaded just before (--users/--products) are used from the first row
    const source = yield* ReplaySource.make(inputs)
    const started = yield* Clock.currentTimeMillis
    const stats = yield* AttributionPipeline.run(source, config)
    const seconds = ((yield* Clock.currentTimeMillis) - started) / 1000
    const c = (name: string) => stats.counters.get(name) ?? 0
    yield* Console.error(
      `replayed ${stats.eventsTotal} messages in ${seconds.toFixed(1)} s (${Math.round(stats.eventsTotal / Math.max(seconds, 1e-3))}/s): ` +
        `${c("checkouts_written")} checkouts written, ${c("late_clicks")} late clicks, ${c("late_checkouts")} late checkouts, ` +
        `${c("ingest_errors")} ingest errors, ${c("enrichment_misses")} enrichment misses`
    )
    return stats
  }).pipe(Effect.scoped)
