/**
 * `/metrics`: the job's counters in the Prometheus text format, through Effect's `Metric`
 * values and `PrometheusMetrics.format`.
 *
 * `EngineStats` stays the source of truth (the runner bumps plain numbers once per batch, the
 * hot path never goes through an Effect). At each scrape the Effect metrics are brought up to
 * date from it: counters grow by what was added since the previous scrape, gauges are set,
 * and the sink latency histogram observes the batches finished since the previous scrape
 * (`EngineStats` keeps the last 100 latencies: with more than 100 batches between two
 * scrapes, only the newest 100 are observed; `insights_sink_batches_total` stays exact).
 */
import { Effect, Metric } from "effect"
import type { Context } from "effect"
import { PrometheusMetrics } from "effect/observability"
import type { EngineStats } from "../engine/EngineStats.ts"
import { estimateStateBytes } from "./Status.ts"

// ---- the metrics (descriptors; their values live in the context's MetricRegistry)

const eventsIn = Metric.counter("insights_events_in_total", { description: "Messages read from the sources, by topic.", incremental: true })
const ingestErrors = Metric.counter("insights_ingest_errors_total", { description: "Messages that are not valid events (written to shop.ingest_errors).", incremental: true })
const lateEvents = Metric.counter("insights_late_events_total", { description: "Events older than the watermark when they arrived (written to shop.late_events), by kind.", incremental: true })
const checkoutsWritten = Metric.counter("insights_checkouts_written_total", { description: "Attributed checkouts written to shop.checkout_attribution.", incremental: true })
const enrichmentMisses = Metric.counter("insights_enrichment_misses_total", { description: "Rows written without a user or product dimension row.", incremental: true })
const jobCounter = (name: string) =>
  Metric.counter(`insights_job_${name}_total`, { description: `Job counter ${name}.`, incremental: true })

const watermarkDelay = Metric.gauge("insights_watermark_delay_seconds", { description: "Processing time minus the engine's event-time watermark." })
const watermarkTime = Metric.gauge("insights_watermark_timestamp_seconds", { description: "The engine's event-time watermark, Unix seconds." })

const taskWatermark = Metric.gauge("insights_task_watermark_timestamp_seconds", { description: "Each owned task's event-time watermark (task n reads partition n of every topic), Unix seconds." })
const taskEpoch = Metric.gauge("insights_task_epoch", { description: "The epoch under which this process owns each task (bumped by every claim)." })

const partitionLag = Metric.gauge("insights_partition_lag_messages", { description: "Messages between a partition's end and the next offset to read." })
const partitionPosition = Metric.gauge("insights_partition_position", { description: "Next offset to read, per source partition." })
const partitionIdle = Metric.gauge("insights_partition_idle", { description: "1 when the partition is idle (excluded from the watermark), else 0." })

const stateUsers = Metric.gauge("insights_state_users", { description: "Users (keys) with keyed state." })
const stateClicks = Metric.gauge("insights_state_clicks_held", { description: "Clicks held in keyed state for the attribution window." })
const statePending = Metric.gauge("insights_state_pending_checkouts", { description: "Checkouts waiting for the watermark before they are written." })
const stateTimers = Metric.gauge("insights_state_timers", { description: "Event-time timers registered." })
const stateBytes = Metric.gauge("insights_state_estimated_bytes", { description: "Approximate size of keyed state (users x 200 B + held items x 300 B): an estimate, not a measurement." })

const sinkRows = Metric.counter("insights_sink_rows_total", { description: "Rows written by the sink (attributed checkouts and rejected messages).", incremental: true })
const sinkBatches = Metric.counter("insights_sink_batches_total", { description: "Sink transactions committed.", incremental: true })
const sinkLatency = Metric.histogram("insights_sink_batch_duration_seconds", {
  description: "Duration of one sink transaction (at most the newest 100 batches between two scrapes are observed).",
  boundaries: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
})
const sinkLastCommit = Metric.gauge("insights_sink_last_commit_timestamp_seconds", { description: "When the sink last committed, Unix seconds." })

const lakeFiles = Metric.gauge("insights_lake_files", { description: "Parquet files the raw lake has renamed into place since start." })
const lakeBytes = Metric.gauge("insights_lake_bytes", { description: "Bytes of the raw lake's files written since start." })
const lakeBuffered = Metric.gauge("insights_lake_buffered_events", { description: "Events waiting in memory for the raw lake's next flush." })
const lakeOldest = Metric.gauge("insights_lake_oldest_buffered_seconds", { description: "Age of the oldest event not yet in a lake file (0 when none waits)." })
const recsTasks = Metric.gauge("insights_recommendation_tasks", { description: "Tasks whose recommender model this process holds." })
const recsUsers = Metric.gauge("insights_recommendation_users", { description: "Users with a recommendation list in the models this process holds." })
const recsUpdates = Metric.counter("insights_recommendation_updates_total", {
  description: "Events applied to the recommender models (a task handed to another member takes its count along; that drop is not subtracted).",
  incremental: true
})
const recsUpdateSeconds = Metric.gauge("insights_recommendation_update_seconds", { description: "Time to apply one event to a recommender model, quantile over the newest 2048 updates." })
const recsProducts = Metric.gauge("insights_recommendation_model_products", { description: "Products known to the recommender models." })
const recsLinks = Metric.gauge("insights_recommendation_model_neighbour_links", { description: "Item-to-item neighbour links held by the recommender models." })
const recsLists = Metric.counter("insights_recommendation_lists_written_total", { description: "User recommendation lists written to shop.user_recommendations.", incremental: true })
const recsRows = Metric.counter("insights_recommendation_rows_written_total", { description: "Rows (one per recommended product) written to shop.user_recommendations.", incremental: true })
const recsSnapshots = Metric.counter("insights_recommendation_snapshots_total", { description: "Recommender model snapshots written.", incremental: true })
const recsSnapshotBytes = Metric.counter("insights_recommendation_snapshot_bytes_total", { description: "Gzipped bytes of the recommender model snapshots written.", incremental: true })
const recsFailedWrites = Metric.counter("insights_recommendation_failed_writes_total", { description: "Recommendation sink writes that failed (retried with what came meanwhile).", incremental: true })
const recsLastWrite = Metric.gauge("insights_recommendation_last_write_duration_seconds", { description: "Duration of the recommendation sink's last successful write." })
const recsLastSnapshot = Metric.gauge("insights_recommendation_last_snapshot_timestamp_seconds", { description: "When a recommender model snapshot was last written, Unix seconds." })
const scheduleLastRun = Metric.gauge("insights_schedule_last_run_timestamp_seconds", { description: "When each scheduled job (hourly rollup, midnight export) last ran, Unix seconds." })
const scheduleNextRun = Metric.gauge("insights_schedule_next_run_timestamp_seconds", { description: "When each scheduled job runs next, Unix seconds." })

const residentMemory = Metric.gauge("process_resident_memory_bytes", { description: "Resident set size in bytes." })
const heapUsed = Metric.gauge("nodejs_heap_size_used_bytes", { description: "V8 heap in use, bytes." })
const heapTotal = Metric.gauge("nodejs_heap_size_total_bytes", { description: "V8 heap allocated, bytes." })
const externalMemory = Metric.gauge("nodejs_external_memory_bytes", { description: "Memory of C++ objects bound to JavaScript objects, bytes." })
const cpuSeconds = Metric.counter("process_cpu_seconds_total", { description: "User and system CPU time spent, seconds.", incremental: true })
const startTime = Metric.gauge("process_start_time_seconds", { description: "Start time of the process, Unix seconds." })

/** Counters of `EngineStats.counters` with a name of their own; others become `insights_job_<name>_total`. */
const known: Record<string, Metric.Counter<number>> = {
  ingest_errors: ingestErrors,
  late_clicks: Metric.withAttributes(lateEvents, { kind: "click" }),
  late_checkouts: Metric.withAttributes(lateEvents, { kind: "checkout" }),
  checkouts_written: checkoutsWritten,
  enrichment_misses: enrichmentMisses
}

export interface ProcessProbe {
  readonly memory: () => { readonly rss: number; readonly heapUsed: number; readonly heapTotal: number; readonly external: number }
  /** user + system CPU, microseconds */
  readonly cpuMicros: () => number
  /** Unix ms */
  readonly startedAt: number
}

export const nodeProcess = (startedAt: number): ProcessProbe => ({
  memory: () => process.memoryUsage(),
  cpuMicros: () => {
    const u = process.cpuUsage()
    return u.user + u.system
  },
  startedAt
})

/**
 * A scraper over `stats`: `format` brings the Effect metrics up to date and renders them.
 * It remembers what it has already counted, so make one per process (per registry).
 */
export const make = (stats: EngineStats, probe: ProcessProbe) => {
  const seen = new Map<string, number>()
  let seenBatches = 0
  /** by how much `key` grew since the last scrape (and remember it) */
  const delta = (key: string, total: number): number => {
    const d = total - (seen.get(key) ?? 0)
    seen.set(key, total)
    return d
  }
  /** `delta` for a total that may drop (a sum over tasks that come and go): a drop adds nothing */
  const growth = (key: string, total: number): number => Math.max(0, delta(key, total))

  /** Synchronous, so two concurrent scrapes never count the same growth twice. */
  const syncUnsafe = (context: Context.Context<never>, now: number): void => {
    const counters = stats.counters()
    for (const [topic, n] of stats.eventsByTopic) {
      Metric.withAttributes(eventsIn, { topic }).updateUnsafe(delta(`events/${topic}`, n), context)
    }
    for (const name of Object.keys(known)) {
      known[name]!.updateUnsafe(delta(`counter/${name}`, counters.get(name) ?? 0), context) // present from the first scrape
    }
    for (const [name, n] of counters) {
      if (!(name in known)) jobCounter(name).updateUnsafe(delta(`counter/${name}`, n), context)
    }

    const watermark = stats.watermark
    if (Number.isFinite(watermark)) {
      watermarkDelay.updateUnsafe((now - watermark) / 1000, context)
      watermarkTime.updateUnsafe(watermark / 1000, context)
    }

    for (const t of stats.taskViews()) {
      const attributes = { task: String(t.id) }
      if (Number.isFinite(t.watermark)) Metric.withAttributes(taskWatermark, attributes).updateUnsafe(t.watermark / 1000, context)
      Metric.withAttributes(taskEpoch, attributes).updateUnsafe(t.epoch, context)
    }

    for (const p of stats.partitionViews(now)) {
      const attributes = { topic: p.topic, partition: String(p.partition) }
      if (p.lag !== undefined) Metric.withAttributes(partitionLag, attributes).updateUnsafe(p.lag, context)
      Metric.withAttributes(partitionPosition, attributes).updateUnsafe(p.readOffset, context)
      Metric.withAttributes(partitionIdle, attributes).updateUnsafe(p.idle ? 1 : 0, context)
    }

    const state = stats.state()
    stateUsers.updateUnsafe(state.keys, context)
    stateClicks.updateUnsafe(state.held, context)
    statePending.updateUnsafe(state.pending, context)
    stateTimers.updateUnsafe(state.timers, context)
    stateBytes.updateUnsafe(estimateStateBytes(state), context)

    const sink = stats.primary.sink
    sinkRows.updateUnsafe(delta("sink/rows", sink.rowsWritten), context)
    sinkBatches.updateUnsafe(delta("sink/batches", sink.batches), context)
    const fresh = Math.min(sink.batches - seenBatches, sink.recentBatchMs.length)
    seenBatches = sink.batches
    for (let i = sink.recentBatchMs.length - fresh; i < sink.recentBatchMs.length; i++) {
      sinkLatency.updateUnsafe(sink.recentBatchMs[i]! / 1000, context)
    }
    sinkLatency.valueUnsafe(context) // registers the family before its first observation
    if (sink.lastCommitAt !== undefined) sinkLastCommit.updateUnsafe(sink.lastCommitAt / 1000, context)

    const lake = stats.jobs.get("lake")?.report(now)
    if (lake !== undefined) {
      lakeFiles.updateUnsafe(lake["files"] ?? 0, context)
      lakeBytes.updateUnsafe(lake["bytes"] ?? 0, context)
      lakeBuffered.updateUnsafe(lake["buffered"] ?? 0, context)
      const oldest = lake["oldestBufferedAt"]
      lakeOldest.updateUnsafe(oldest === undefined ? 0 : (now - oldest) / 1000, context)
    }
    const recs = stats.jobs.get("recommendations")?.report(now)
    if (recs !== undefined) {
      const n = (key: string): number => recs[key] ?? 0
      recsTasks.updateUnsafe(n("tasks"), context)
      recsUsers.updateUnsafe(n("users"), context)
      recsUpdates.updateUnsafe(growth("recs/updates", n("updates")), context)
      for (const [quantile, key] of [["0.5", "update_p50_ms"], ["0.99", "update_p99_ms"]] as const) {
        const ms = recs[key]
        if (ms !== undefined) Metric.withAttributes(recsUpdateSeconds, { quantile }).updateUnsafe(ms / 1000, context)
      }
      recsProducts.updateUnsafe(n("products"), context)
      recsLinks.updateUnsafe(n("neighbourLinks"), context)
      recsLists.updateUnsafe(growth("recs/lists", n("lists_written")), context)
      recsRows.updateUnsafe(growth("recs/rows", n("rows_written")), context)
      recsSnapshots.updateUnsafe(growth("recs/snapshots", n("snapshots")), context)
      recsSnapshotBytes.updateUnsafe(growth("recs/snapshot_bytes", n("snapshot_bytes")), context)
      recsFailedWrites.updateUnsafe(growth("recs/failed_writes", n("failed_writes")), context)
      if (n("lists_written") + n("snapshots") > 0) recsLastWrite.updateUnsafe(n("last_write_ms") / 1000, context) // nothing written yet: no duration
      const lastSnapshot = recs["last_snapshot_at"]
      if (lastSnapshot !== undefined) recsLastSnapshot.updateUnsafe(lastSnapshot / 1000, context)
    }
    for (const job of stats.scheduledJobs.values()) {
      const attributes = { job: job.name }
      if (job.lastRunAt !== undefined) Metric.withAttributes(scheduleLastRun, attributes).updateUnsafe(job.lastRunAt / 1000, context)
      if (job.nextRunAt !== undefined) Metric.withAttributes(scheduleNextRun, attributes).updateUnsafe(job.nextRunAt / 1000, context)
    }

    const memory = probe.memory()
    residentMemory.updateUnsafe(memory.rss, context)
    heapUsed.updateUnsafe(memory.heapUsed, context)
    heapTotal.updateUnsafe(memory.heapTotal, context)
    externalMemory.updateUnsafe(memory.external, context)
    cpuSeconds.updateUnsafe(delta("cpu", probe.cpuMicros()) / 1e6, context)
    startTime.updateUnsafe(probe.startedAt / 1000, context)
  }

  return {
    /** Brings the metrics up to date at processing time `now` and renders the registry. */
    format: (now: number): Effect.Effect<string> =>
      Effect.gen(function*() {
        const context = yield* Effect.context<never>()
        syncUnsafe(context, now)
        return yield* PrometheusMetrics.format()
      })
  }
}

export type Scraper = ReturnType<typeof make>
