/**
 * Retention of the tables that grow with time and not with the business: engine samples
 * (`engine_status`, one row every 5 s), rejected messages (`ingest_errors`) and late events
 * (`late_events`). A scoped fiber deletes what is older than each table's setting (by when the
 * row was recorded: processing time), at start and then every `everyMs`; 0 keeps a table
 * forever. Rows go in chunks of 10 000, each its own statement, so a large backlog never
 * holds a long lock against the sinks. Several processes may run it: deleting is idempotent.
 */
import { Clock, Effect, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import { formatTimestamp } from "../domain/Timestamp.ts"
import type { ScheduledJobStatus } from "../engine/EngineStats.ts"

export const JOB_NAME = "retention"

export interface RetentionSettings {
  /** keep engine_status samples this long (ms); 0: forever */
  readonly engineStatusMs: number
  readonly ingestErrorsMs: number
  readonly lateEventsMs: number
}

const CHUNK = 10_000

// fixed table and column names (never input): the cutoff is the only parameter
const tables = [
  { table: "shop.engine_status", column: "sampled_at", setting: "engineStatusMs" },
  { table: "shop.ingest_errors", column: "recorded_at", setting: "ingestErrorsMs" },
  { table: "shop.late_events", column: "recorded_at", setting: "lateEventsMs" }
] as const

/** Deletes what is past retention at processing time `now`; returns the rows deleted per table. */
export const prune = (settings: RetentionSettings, now: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const deleted: Record<string, number> = {}
    for (const { table, column, setting } of tables) {
      const keepMs = settings[setting]
      if (keepMs <= 0) continue
      const cutoff = formatTimestamp(now - keepMs)
      let total = 0
      for (;;) {
        const rows = yield* sql.unsafe<{ n: number }>(
          `WITH gone AS (DELETE FROM ${table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${table} WHERE ${column} < $1 LIMIT ${CHUNK})) RETURNING 1)
           SELECT count(*)::int AS n FROM gone`, [cutoff])
        const n = rows[0]?.n ?? 0
        total += n
        if (n < CHUNK) break
      }
      deleted[table] = total
    }
    return deleted
  })

/** The scoped fiber: a prune at start, then every `everyMs`; a failed one is logged and tried again at the next. */
export const schedule = (settings: RetentionSettings, everyMs: number, status?: ScheduledJobStatus) =>
  Effect.forkScoped(Effect.repeat(
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const result = yield* Effect.result(prune(settings, now))
      if (status !== undefined) {
        status.lastRunAt = now
        status.nextRunAt = now + everyMs
        status.lastResult = result._tag === "Success"
          ? (Object.values(result.success).reduce((a, b) => a + b, 0) === 0 ? "nothing past retention"
            : `deleted ${Object.entries(result.success).filter(([, n]) => n > 0).map(([t, n]) => `${n.toLocaleString("en-US")} from ${t.slice(5)}`).join(", ")}`)
          : `failed: ${String((result.failure as { message?: string }).message ?? result.failure)}`
      }
      if (result._tag === "Failure") yield* Effect.logWarning(`retention failed; trying again in ${everyMs} ms`, result.failure)
    }),
    Schedule.spaced(everyMs)
  ))
