/**
 * The job's state as JSON for the status page and `/api/status`: watermark and its delay,
 * partitions (position, lag, idle), counters, keyed state and the sink.
 */
import type { RunnerStats } from "../engine/RunnerStats.ts"

const time = (ms: number): string | null => Number.isFinite(ms) ? new Date(ms).toISOString() : ms > 0 ? "+infinity" : null

export const statusSnapshot = (stats: RunnerStats, now: number) => {
  const state = stats.state()
  return {
    now: new Date(now).toISOString(),
    watermark: time(stats.watermark),
    watermarkDelaySeconds: Number.isFinite(stats.watermark) ? (now - stats.watermark) / 1000 : null,
    eventsTotal: stats.eventsTotal,
    eventsByTopic: Object.fromEntries(stats.eventsByTopic),
    counters: Object.fromEntries(stats.counters),
    partitions: stats.partitionViews(now).map((p) => ({
      topic: p.topic,
      partition: p.partition,
      position: p.readOffset,
      highWatermark: p.highWatermark ?? null,
      lag: p.lag ?? null,
      events: p.events,
      maxEventTime: time(p.maxEventTime),
      idle: p.idle,
      lastReadAt: p.lastReadAt === undefined ? null : new Date(p.lastReadAt).toISOString()
    })),
    state: { users: state.keys, clicksHeld: state.held, pendingCheckouts: state.pending, timers: state.timers },
    sink: {
      rowsWritten: stats.sink.rowsWritten,
      batches: stats.sink.batches,
      lastBatchMs: stats.sink.lastBatchMs ?? null,
      lastCommitAt: stats.sink.lastCommitAt === undefined ? null : new Date(stats.sink.lastCommitAt).toISOString()
    },
    recentErrors: stats.recentErrors.map((e) => ({ ...e, at: new Date(e.at).toISOString() })),
    recentLateEvents: stats.recentLateEvents.map((e) => ({ ...e, at: new Date(e.at).toISOString() }))
  }
}

export type StatusSnapshot = ReturnType<typeof statusSnapshot>
