/**
 * The attribution job wired end to end: any source → runner → PostgreSQL sink, with the
 * dimensions cache for the lookup join. What `replay`, the daemon and the tests run.
 */
import { Effect } from "effect"
import * as Runner from "../engine/Runner.ts"
import { RunnerStats } from "../engine/RunnerStats.ts"
import type { Source } from "../engine/Source.ts"
import type { EngineConfig } from "../config.ts"
import { runnerOptions } from "../config.ts"
import * as PgSink from "../sinks/PgSink.ts"
import * as Attribution from "./Attribution.ts"
import { Dimensions } from "./Dimensions.ts"

export type PipelineSettings = Pick<EngineConfig,
  "clicksTopic" | "checkoutsTopic" | "windowMs" | "dedupRetentionMs" | "outOfOrdernessMs" | "idleTimeoutMs" | "keyGroups" | "flushRows" | "flushIntervalMs">

export const run = <E>(source: Source<E>, settings: PipelineSettings, stats: RunnerStats = new RunnerStats(), extra?: Partial<Runner.RunnerOptions>) =>
  Effect.gen(function*() {
    const dims = yield* Dimensions
    const sink = yield* PgSink.make({ sourceName: source.name, stats })
    return yield* Runner.run({
      source,
      job: Attribution.job({
        topics: { clicks: settings.clicksTopic, checkouts: settings.checkoutsTopic },
        windowMs: settings.windowMs,
        dedupRetentionMs: settings.dedupRetentionMs
      }),
      sink: { write: sink.write(dims) },
      options: { ...runnerOptions(settings as EngineConfig), ...extra },
      stats
    })
  })
