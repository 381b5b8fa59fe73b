/**
 * Writes the attribution job's output to PostgreSQL: checkout rows, late events, ingest
 * errors and the source positions they cover, all in ONE transaction, so after a crash the
 * tables and the positions agree and a restart resumes exactly (SPEC §5).
 *
 * Every statement is a keyed upsert over `json_populate_recordset` of one JSON parameter:
 * the statement text never changes (prepared once, cached by the driver), a batch of any size
 * is one round trip, and PostgreSQL does the typing.
 */
import { Clock, Duration, Effect, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import type { AttributionOutput } from "../jobs/Attribution.ts"
import { toRows } from "../jobs/AttributionRows.ts"
import type { Dimensions } from "../jobs/Dimensions.ts"
import type { Sink, SinkBatch } from "../engine/Runner.ts"
import type { RunnerStats } from "../engine/RunnerStats.ts"
import { formatTimestamp } from "../domain/Timestamp.ts"

const ATTRIBUTION_COLUMNS = [
  "user_id", "product_id", "quantity", "shipping_cost", "discount", "payment_method", "payment_status",
  "payment_description", "shipping_address", "checkout_timestamp", "gender", "category", "product_name", "brand",
  "total_amount", "profit", "click_id", "source", "click_timestamp", "is_late"
] as const

const list = (prefix: string) => ATTRIBUTION_COLUMNS.map((c) => `${prefix}${c}`).join(", ")

/**
 * A row is rewritten only when something changed (so a replay leaves `written_at` alone),
 * and a late copy never replaces an on-time row (a redelivered checkout changes nothing).
 */
const UPSERT_ATTRIBUTION = `
INSERT INTO shop.checkout_attribution AS t
SELECT * FROM json_populate_recordset(NULL::shop.checkout_attribution, $1::json)
ON CONFLICT (checkout_id) DO UPDATE SET (${list("")}, written_at) = (${list("EXCLUDED.")}, EXCLUDED.written_at)
WHERE (t.is_late OR NOT EXCLUDED.is_late)
  AND (${list("t.")}) IS DISTINCT FROM (${list("EXCLUDED.")})`

const INSERT_LATE = `
INSERT INTO shop.late_events
SELECT * FROM json_populate_recordset(NULL::shop.late_events, $1::json)
ON CONFLICT (topic, event_id) DO NOTHING`

const INSERT_ERRORS = `
INSERT INTO shop.ingest_errors
SELECT * FROM json_populate_recordset(NULL::shop.ingest_errors, $1::json)
ON CONFLICT (source, "partition", "offset") DO NOTHING`

const UPSERT_POSITIONS = `
INSERT INTO shop.source_positions AS t
SELECT * FROM json_populate_recordset(NULL::shop.source_positions, $1::json)
ON CONFLICT (source, topic, "partition") DO UPDATE SET
  next_offset = EXCLUDED.next_offset, restart_offset = EXCLUDED.restart_offset,
  max_event_time = EXCLUDED.max_event_time, watermark = EXCLUDED.watermark, updated_at = EXCLUDED.updated_at`

/** 100 ms, doubling, at most 5 s apart, for as long as the error is retryable. */
const retrySchedule = Schedule.exponential("100 millis").pipe(
  Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.seconds(5))))
)

const timestampOrNull = (ms: number): string | null => Number.isFinite(ms) ? formatTimestamp(ms) : null

export interface PgSinkOptions {
  /** names this input in source_positions, e.g. "kafka:insights" or "replay" */
  readonly sourceName: string
  readonly stats: RunnerStats
}

export const make = (options: PgSinkOptions) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { sourceName, stats } = options

    const write = (dims: Dimensions["Service"]) => (batch: SinkBatch<AttributionOutput>): Effect.Effect<void, SqlError> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const rows = toRows(batch.outputs, dims, now)
        const recordedAt = formatTimestamp(now)
        const errors = batch.rejected.map((r) => ({
          source: r.envelope.topic,
          partition: r.envelope.partition,
          offset: r.envelope.offset,
          payload: r.envelope.value,
          error: r.error,
          recorded_at: recordedAt
        }))
        const positions = batch.positions.map((p) => ({
          source: sourceName,
          topic: p.topic,
          partition: p.partition,
          next_offset: p.nextOffset,
          restart_offset: p.restartOffset ?? p.nextOffset,
          max_event_time: timestampOrNull(p.maxEventTime ?? -Infinity),
          watermark: timestampOrNull(batch.watermark),
          updated_at: recordedAt
        }))
        yield* sql.withTransaction(Effect.gen(function*() {
          if (rows.attribution.length > 0) yield* sql.unsafe(UPSERT_ATTRIBUTION, [JSON.stringify(rows.attribution)])
          if (rows.late.length > 0) yield* sql.unsafe(INSERT_LATE, [JSON.stringify(rows.late)])
          if (errors.length > 0) yield* sql.unsafe(INSERT_ERRORS, [JSON.stringify(errors)])
          if (positions.length > 0) yield* sql.unsafe(UPSERT_POSITIONS, [JSON.stringify(positions)])
        })).pipe(
          // A transaction is all or nothing and every statement an idempotent upsert, so a
          // batch that failed on a lost connection or a deadlock is simply written again; while
          // PostgreSQL is away the sink waits here and backpressure pauses the reads.
          Effect.tapError((e) => e.isRetryable ? Effect.logWarning(`sink: ${e.message}; retrying`) : Effect.void),
          Effect.retry({ while: (e) => e.isRetryable, schedule: retrySchedule })
        )
        stats.count("checkouts_written", rows.attribution.length)
        stats.count("late_clicks", rows.lateClicks)
        stats.count("late_checkouts", rows.lateCheckouts)
        stats.count("ingest_errors", errors.length)
        stats.count("enrichment_misses", rows.enrichmentMisses)
        for (const r of batch.rejected) stats.recentError({ topic: r.envelope.topic, partition: r.envelope.partition, offset: r.envelope.offset, error: r.error, at: now })
        for (const l of rows.late) stats.recentLate({ topic: l.topic, id: l.event_id, eventTime: l.event_timestamp, at: now })
      })

    return { write } as const
  })

export type PgSink = Effect.Success<ReturnType<typeof make>>
export type { Sink }
