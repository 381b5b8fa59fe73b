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
import * as AttributionRestore from "./AttributionRestore.ts"
import { Dimensions } from "./Dimensions.ts"

export type PipelineSettings = Pick<EngineConfig,
  "clicksTopic" | "checkoutsTopic" | "windowMs" | "dedupRetentionMs" | "outOfOrdernessMs" | "idleTimeoutMs" | "keyGroups" | "flushRows" | "flushIntervalMs">

/**
 * Runs the job over `source`. An unbounded source (Kafka) resumes from the positions committed
 * with the rows; a bounded one (a replay of files) is a backfill and always starts from the top.
 */
export const run = <E>(source: Source<E>, settings: PipelineSettings, stats: RunnerStats = new RunnerStats(), extra?: Partial<Runner.RunnerOptions>) =>
  Effect.gen(function*() {
    const dims = yield* Dimensions
    const sink = yield* PgSink.make({ sourceName: source.name, stats })
    const topics = { clicks: settings.clicksTopic, checkouts: settings.checkoutsTopic }
    const restore = source._tag === "Unbounded" ? yield* AttributionRestore.make(source.name, topics) : undefined
    return yield* Runner.run({
      ...(restore === undefined ? {} : { restore }),
      source,
      job: Attribution.job({
        topics,
        windowMs: settings.windowMs,
        dedupRetentionMs: settings.dedupRetentionMs
      }),
      sink: { write: sink.write(dims) },
      options: { ...runnerOptions(settings as EngineConfig), ...extra },
      stats
    })
  })
