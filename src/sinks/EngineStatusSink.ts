/**
 * Samples the running job into `shop.engine_status` every few seconds, for Grafana's
 * engine-health panels (watermark delay, lag, throughput, state size).
 */
import { Clock, Effect, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import type { EngineStats } from "../engine/EngineStats.ts"

export const sample = (stats: EngineStats, everyMs: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    let previous: { at: number; events: number } | undefined
    const once = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const events = stats.eventsTotal
      const rate = previous === undefined ? 0 : (events - previous.events) / Math.max((now - previous.at) / 1000, 1e-3)
      previous = { at: now, events }
      const state = stats.state()
      const lag = stats.partitionViews(now).reduce((sum, p) => sum + (p.lag ?? 0), 0)
      const wm = stats.watermark
      const c = (name: string) => stats.counter(name)
      yield* sql`
        INSERT INTO shop.engine_status ${sql.insert({
          sampled_at: new Date(now),
          watermark: Number.isFinite(wm) ? new Date(wm) : null,
          watermark_delay_seconds: Number.isFinite(wm) ? (now - wm) / 1000 : null,
          events_per_second: rate,
          consumer_lag: lag,
          events_total: events,
          late_events_total: c("late_clicks") + c("late_checkouts"),
          ingest_errors_total: c("ingest_errors"),
          rows_written_total: stats.primary.sink.rowsWritten,
          users_held: state.keys,
          clicks_held: state.held,
          pending_checkouts: state.pending
        })} ON CONFLICT (sampled_at) DO NOTHING`
    })
    yield* once.pipe(
      Effect.catch((e) => Effect.logWarning(`engine_status sample failed: ${e.message}`)),
      Effect.repeat(Schedule.spaced(everyMs))
    )
  })
