/**
 * The attribution job wired end to end: any source → tasks → enrichment → PostgreSQL, with
 * the dimensions cache for the lookup join. What `replay`, the daemon and the tests run.
 *
 * Three jobs over one decode: attribution (which also writes the rejected messages), the
 * raw-lake tap and the recommender.
 */
import { Clock, Effect } from "effect"
import type { SqlError } from "effect/sql/SqlError"
import type { EngineConfig } from "../config.ts"
import { runnerOptions } from "../config.ts"
import { EngineStats } from "../engine/EngineStats.ts"
import * as Runner from "../engine/Runner.ts"
import type { PartitionRef, Source } from "../engine/Source.ts"
import { originOf } from "../engine/Source.ts"
import type { Sink, Topology } from "../engine/Topology.ts"
import * as LakeSink from "../sinks/LakeSink.ts"
import * as ParquetWriter from "../sinks/ParquetWriter.ts"
import * as PgSink from "../sinks/PgSink.ts"
import * as TaskOwnership from "../sinks/TaskOwnership.ts"
import * as Attribution from "./Attribution.ts"
import * as AttributionRestore from "./AttributionRestore.ts"
import { toRows } from "./AttributionRows.ts"
import { Dimensions } from "./Dimensions.ts"
import * as RawLake from "./RawLake.ts"
import * as Recommender from "./Recommender.ts"
import * as RecommendationSink from "../sinks/RecommendationSink.ts"

const JOB = Attribution.JOB

export type PipelineSettings = Pick<EngineConfig,
  "clicksTopic" | "checkoutsTopic" | "windowMs" | "dedupRetentionMs" | "outOfOrdernessMs" | "idleTimeoutMs" | "flushRows" | "flushIntervalMs" | "maxFutureMs"
  | "lakeDir" | "lakeFlushMs" | "lakeBufferRows" | "recsSnapshotMs" | "recsWriteMs" | "recsRecomputeMs">

/**
 * The store's topology over `sourceName`. An unbounded source (Kafka) resumes from the
 * positions committed with the rows; a bounded one (a replay of files) always starts fresh.
 * `inputOf` names where a partition is read (a replay's file), for the ingest errors of rows
 * PostgreSQL refuses, as the rejected messages of that partition are named.
 */
export const topology = (
  sourceName: string, bounded: boolean, settings: PipelineSettings, stats: EngineStats,
  inputOf: (ref: PartitionRef) => string = () => sourceName,
  recommenders?: Recommender.Recommenders
) =>
  Effect.gen(function*() {
    const dims = yield* Dimensions
    const pg = yield* PgSink.make({ sourceName, job: JOB })
    const topics = { clicks: settings.clicksTopic, checkouts: settings.checkoutsTopic }
    const options = { windowMs: settings.windowMs, dedupRetentionMs: settings.dedupRetentionMs }
    const figures = stats.job(JOB)

    const sink: Sink<Attribution.AttributionOutput, PgSink.SinkError | SqlError> = {
      write: (batch) =>
        Effect.gen(function*() {
          const started = yield* Clock.currentTimeMillis
          const rows = toRows(batch.outputs, batch.rejected, dims, started, inputOf)
          const result = yield* pg.write({ attribution: rows.attribution, late: rows.late, errors: rows.errors, positions: batch.positions, claims: batch.claims })
          if (result.fenced.length > 0) return result
          const finished = yield* Clock.currentTimeMillis
          const refusedCheckouts = result.refused.filter((r) => r.source === topics.checkouts).length
          figures.recordSinkWrite(rows.attribution.length + rows.late.length + rows.errors.length, finished - started, finished)
          figures.count("checkouts_written", rows.attribution.length - Math.min(refusedCheckouts, rows.attribution.length))
          figures.count("late_clicks", rows.lateClicks)
          figures.count("late_checkouts", rows.lateCheckouts)
          figures.count("ingest_errors", rows.errors.length + result.refused.length)
          figures.count("refused_rows", result.refused.length)
          figures.count("unstorable_errors", result.unstorable)
          figures.count("enrichment_misses", rows.enrichmentMisses)
          for (const r of [...rows.errors, ...result.refused]) figures.recentError({ topic: r.source, partition: r.partition, offset: r.offset, error: r.error, at: finished })
          for (const l of rows.late) figures.recentLate({ topic: l.row.topic, id: l.row.event_id, eventTime: l.row.event_timestamp, at: finished })
          return result
        })
    }

    const lake = yield* LakeSink.make({
      lakeDir: settings.lakeDir, sourceName, job: RawLake.JOB, flushAfterMs: settings.lakeFlushMs, maxBufferRows: settings.lakeBufferRows
    }, yield* ParquetWriter.make, yield* LakeSink.pgStore(sourceName, RawLake.JOB))
    stats.job(RawLake.JOB).report = () => ({ ...lake.figures })

    const recs = recommenders ?? new Recommender.Recommenders(Recommender.catalogOf(dims))
    const recsFigures = stats.job(Recommender.JOB)
    const recsSink = yield* RecommendationSink.make({
      sourceName, job: Recommender.JOB, writeEveryMs: settings.recsWriteMs, maxPendingUsers: 50_000, keepState: !bounded
    }, recs)
    const meter = new Recommender.UpdateMeter()
    recsFigures.report = (now) => {
      const f = recsSink.figures
      return {
        ...recs.figures(), updates_per_s: meter.perSecond(now), update_p50_ms: meter.percentile(0.5), update_p99_ms: meter.percentile(0.99),
        lists_written: f.listsWritten, rows_written: f.rowsWritten, snapshots: f.snapshots, snapshot_bytes: f.snapshotBytes,
        failed_writes: f.failedWrites, last_write_ms: f.lastWriteMs, last_snapshot_at: f.lastSnapshotAt
      }
    }

    const topology: Topology<Attribution.ShopEvent, unknown> = {
      decode: Attribution.decode(topics),
      ownership: yield* TaskOwnership.make(sourceName),
      jobs: [
        Attribution.node<PgSink.SinkError | SqlError>(options, sink, bounded ? undefined : yield* AttributionRestore.make(sourceName, JOB, topics)),
        RawLake.node(lake.sink, bounded ? undefined : lake.recall),
        Recommender.node(recs, { snapshotEveryMs: bounded ? Infinity : settings.recsSnapshotMs, meter, recomputeEveryMs: settings.recsRecomputeMs }, recsSink.sink, bounded ? undefined : recsSink.recall)
      ]
    }
    return topology
  })

/** Runs the store's topology over `source`. */
export const run = <E>(
  source: Source<E>, settings: PipelineSettings, stats: EngineStats = new EngineStats(), extra?: Partial<Runner.RunnerOptions>,
  recommenders?: Recommender.Recommenders
) =>
  Effect.gen(function*() {
    if (recommenders !== undefined && source._tag === "Unbounded") recommenders.totalTasks = source.partitionsPerTopic
    const t = yield* topology(source.name, source._tag === "Bounded", settings, stats, originOf(source), recommenders)
    return yield* Runner.run({ source, topology: t, options: { ...runnerOptions(settings), ...extra }, stats })
  })

/** The jobs whose positions decide where a partition of `source` starts reading. */
export const jobNames: ReadonlyArray<string> = [JOB, RawLake.JOB, Recommender.JOB]
