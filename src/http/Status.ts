/**
 * The job's state as JSON for the status page and `/api/status`: watermark and its delay,
 * partitions (position, lag, idle), counters, keyed state with an approximate size, the
 * sink with its recent batch latency, scheduled jobs, the raw lake, the recommender and the
 * process's memory.
 *
 * Read from `EngineStats` on demand; rates are left to the reader (the page computes them
 * from successive snapshots, Prometheus from successive scrapes).
 */
import type { EngineStats } from "../engine/EngineStats.ts"

/** Rough cost of one held item (a click or a pending checkout with its map entries), in bytes. */
export const BYTES_PER_HELD = 300
/** Rough cost of one key (a user's state record), in bytes. */
export const BYTES_PER_KEY = 200

const time = (ms: number): string | null => Number.isFinite(ms) ? new Date(ms).toISOString() : ms > 0 ? "+infinity" : null
const isoOrNull = (ms: number | undefined): string | null => ms === undefined ? null : new Date(ms).toISOString()

/** Approximate bytes of keyed state: an estimate for a glance, not a measurement. */
export const estimateStateBytes = (state: { readonly keys: number; readonly held: number; readonly pending: number }): number =>
  state.keys * BYTES_PER_KEY + (state.held + state.pending) * BYTES_PER_HELD

/** The `q` quantile (0..1) of `values` by nearest rank; `null` when empty. */
export const quantile = (values: ReadonlyArray<number>, q: number): number | null => {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

export interface ProcessInfo {
  /** processing time the HTTP surface started, epoch ms */
  readonly startedAt: number
  readonly memory: () => { readonly rss: number; readonly heapUsed: number; readonly heapTotal: number }
}

const lakeView = (stats: EngineStats, now: number) => {
  const lake = stats.jobs.get("lake")
  if (lake === undefined) return null
  const r = lake.report(now)
  const oldest = r["oldestBufferedAt"]
  return {
    files: r["files"] ?? 0,
    bytes: r["bytes"] ?? 0,
    rows: r["rows"] ?? 0,
    flushes: r["flushes"] ?? 0,
    buffered: r["buffered"] ?? 0,
    lastFlushAt: isoOrNull(r["lastFlushAt"]),
    oldestBufferedAgeSeconds: oldest === undefined ? null : (now - oldest) / 1000
  }
}

/**
 * The recommender (`Recommender.JOB`): how many users have a list, how fast the models take
 * updates, how big they are, and what the sink has written (lists, snapshots, failures).
 * `null` when the job does not run in this process.
 */
const recommendationsView = (stats: EngineStats, now: number) => {
  const job = stats.jobs.get("recommendations")
  if (job === undefined) return null
  const r = job.report(now)
  const n = (key: string): number => r[key] ?? 0
  const lastSnapshotAt = r["last_snapshot_at"]
  return {
    /** tasks whose model this process holds */
    tasks: n("tasks"),
    /** users with a recommendation list in the models held here */
    users: n("users"),
    /** model updates since start (summed over the tasks held now) */
    updates: n("updates"),
    /** over the last 10 s */
    updatesPerSecond: n("updates_per_s"),
    /** time to apply one event to the model, over the newest 2048 updates; `null` before the first */
    updateMs: { p50: r["update_p50_ms"] ?? null, p99: r["update_p99_ms"] ?? null },
    model: { products: n("products"), neighbourLinks: n("neighbourLinks"), users: n("users") },
    listsWritten: n("lists_written"),
    rowsWritten: n("rows_written"),
    /** duration of the sink's last successful write; `null` before the first */
    lastWriteMs: n("lists_written") + n("snapshots") > 0 ? n("last_write_ms") : null,
    snapshots: {
      count: n("snapshots"),
      /** gzipped bytes written, summed over all snapshots */
      bytes: n("snapshot_bytes"),
      lastAt: isoOrNull(lastSnapshotAt),
      lastAgeSeconds: lastSnapshotAt === undefined ? null : (now - lastSnapshotAt) / 1000
    },
    failedWrites: n("failed_writes")
  }
}

export const statusSnapshot = (stats: EngineStats, now: number, info?: ProcessInfo) => {
  const state = stats.state()
  const counter = (name: string) => stats.counter(name)
  const sink = stats.primary.sink
  const recent = sink.recentBatchMs
  const watermark = stats.watermark
  const jobs = [...stats.jobs.values()]
  const memory = info?.memory()
  return {
    now: new Date(now).toISOString(),
    startedAt: info === undefined ? null : new Date(info.startedAt).toISOString(),
    watermark: time(watermark),
    watermarkDelaySeconds: Number.isFinite(watermark) ? (now - watermark) / 1000 : null,
    eventsTotal: stats.eventsTotal,
    eventsByTopic: Object.fromEntries(stats.eventsByTopic),
    counters: Object.fromEntries(stats.counters()),
    ingestErrors: counter("ingest_errors"),
    lateEvents: { clicks: counter("late_clicks"), checkouts: counter("late_checkouts") },
    /** the tasks this process owns: task n reads partition n of every topic */
    tasks: stats.taskViews().map((t) => ({ id: t.id, epoch: t.epoch, watermark: time(t.watermark), partitions: t.partitions.map((p) => p.id) })),
    jobs: jobs.map((j) => ({ name: j.name, rowsWritten: j.sink.rowsWritten, batches: j.sink.batches, lastCommitAt: isoOrNull(j.sink.lastCommitAt), counters: Object.fromEntries(j.counters) })),
    partitions: stats.partitionViews(now).map((p) => ({
      task: p.task ?? null,
      topic: p.topic,
      partition: p.partition,
      position: p.readOffset,
      highWatermark: p.highWatermark ?? null,
      lag: p.lag ?? null,
      events: p.events,
      maxEventTime: time(p.maxEventTime),
      idle: p.idle,
      lastReadAt: isoOrNull(p.lastReadAt)
    })),
    state: {
      users: state.keys,
      clicksHeld: state.held,
      pendingCheckouts: state.pending,
      timers: state.timers,
      approxBytes: estimateStateBytes(state),
      approxBytesFormula: `users × ${BYTES_PER_KEY} B + (clicks held + pending checkouts) × ${BYTES_PER_HELD} B`
    },
    sink: {
      rowsWritten: sink.rowsWritten,
      batches: sink.batches,
      lastBatchMs: sink.lastBatchMs ?? null,
      recentBatchMs: {
        count: recent.length,
        p50: quantile(recent, 0.5),
        p95: quantile(recent, 0.95),
        max: recent.length === 0 ? null : Math.max(...recent)
      },
      lastCommitAt: isoOrNull(sink.lastCommitAt)
    },
    /** scheduled jobs (midnight export, …): each keeps its `EngineStats.scheduledJob(name)` up to date */
    scheduledJobs: [...stats.scheduledJobs.values()].map((j): { readonly name: string; readonly lastRunAt: string | null; readonly nextRunAt: string | null; readonly lastResult: string | null } =>
      ({ name: j.name, lastRunAt: isoOrNull(j.lastRunAt), nextRunAt: isoOrNull(j.nextRunAt), lastResult: j.lastResult ?? null })),
    /** the raw lake: what it has written and how old its oldest buffered event is */
    lake: lakeView(stats, now),
    /** the recommender: users with lists, update rate and latency, model size, what it has written */
    recommendations: recommendationsView(stats, now),
    process: memory === undefined ? null : { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, heapTotalBytes: memory.heapTotal },
    recentErrors: jobs.flatMap((j) => j.recentErrors).sort((a, b) => a.at - b.at).map((e) => ({ ...e, at: new Date(e.at).toISOString() })),
    recentLateEvents: jobs.flatMap((j) => j.recentLateEvents).sort((a, b) => a.at - b.at).map((e) => ({ ...e, at: new Date(e.at).toISOString(), reason: "event time behind the watermark" }))
  }
}

export type StatusSnapshot = ReturnType<typeof statusSnapshot>
