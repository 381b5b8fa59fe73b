/**
 * The hourly rollup (SPEC §6): `shop.hourly_rollup`, one row per (hour, dimension, value) over
 * `checkout_attribution`, rolled by a scoped fiber once the *global* watermark (the minimum of
 * the committed watermarks of every partition of both topics, whichever process owns them)
 * has passed the hour's end. The sink marks the hours of the checkouts it writes in
 * `shop.rollup_pending`, in the same transaction as the rows; a roll takes the due marked
 * hours (locked), recomputes them and clears them, so a late checkout written for a rolled
 * hour marks it again and it is rolled again. Rolling is idempotent, and with several
 * processes one rolls at a time (a transaction-level advisory lock).
 */
import { Clock, Effect, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import { formatTimestamp } from "../domain/Timestamp.ts"
import type { ScheduledJobStatus } from "../engine/EngineStats.ts"
import { storedTime } from "../sinks/PositionStore.ts"
import { transaction } from "../sinks/Database.ts"

/** Its name on the status page. */
export const JOB_NAME = "hourly-rollup"

/** What the status page shows of the rollup. */
export interface RollupState {
  lastRunAt: number | undefined
  lastResult: string | undefined
  hoursRolled: number
  /** the global watermark at the last run (epoch ms; −∞ while some partition has none) */
  globalWatermark: number
}

const LOCK = `SELECT pg_try_advisory_xact_lock(hashtext('insights-engine:hourly-rollup')) AS locked`

/** −∞ unless every one of `expected` partitions of the job has a committed watermark. */
const GLOBAL_WATERMARK = `
SELECT count(*)::int AS partitions, bool_or(watermark IS NULL) AS unknown,
       CASE WHEN min(watermark) = 'infinity' THEN 'infinity'
            ELSE to_char(min(watermark) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') END AS watermark
FROM shop.source_positions WHERE source = $1 AND job = $2`

const DUE = `
SELECT to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS hour FROM shop.rollup_pending
WHERE hour + interval '1 hour' <= $1::timestamptz ORDER BY hour LIMIT 500 FOR UPDATE`

const CLEAR = `DELETE FROM shop.hourly_rollup WHERE hour = ANY($1::timestamptz[])`

const ROLL = `
INSERT INTO shop.hourly_rollup (hour, dimension, value, checkouts, paid_checkouts, units, revenue, profit, rolled_at)
SELECT h.hour, d.dimension, d.value,
       count(*)::int,
       (count(*) FILTER (WHERE c.paid))::int,
       coalesce(sum(c.quantity) FILTER (WHERE c.paid), 0),
       coalesce(sum(c.total_amount) FILTER (WHERE c.paid), 0),
       coalesce(sum(c.profit) FILTER (WHERE c.paid), 0),
       $2::timestamptz
FROM unnest($1::timestamptz[]) AS h(hour)
JOIN LATERAL (
  SELECT a.*, a.payment_status = 'Success' AS paid FROM shop.checkout_attribution a
  WHERE a.checkout_timestamp >= h.hour AND a.checkout_timestamp < h.hour + interval '1 hour'
) c ON true
CROSS JOIN LATERAL (VALUES
  ('source', coalesce(c.source, 'Unattributed')),
  ('category', coalesce(nullif(c.category, ''), 'Unknown')),
  ('gender', coalesce(c.gender, 'Unknown')),
  ('payment', coalesce(c.payment_description, CASE WHEN c.paid THEN 'None' ELSE 'Unknown' END))
) AS d(dimension, value)
GROUP BY h.hour, d.dimension, d.value`

const UNMARK = `DELETE FROM shop.rollup_pending WHERE hour = ANY($1::timestamptz[])`

/**
 * Rolls every marked hour the global watermark of `sourceName`'s job `job` has passed.
 * `partitions`: how many positions the job has when every partition of every topic has one.
 * Returns the hours rolled (none while another process holds the lock).
 */
export const rollDue = (sourceName: string, job: string, partitions: number, state?: RollupState) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const now = yield* Clock.currentTimeMillis
    const rolled = yield* transaction(sql, Effect.gen(function*() {
      const [lock] = yield* sql.unsafe<{ locked: boolean }>(LOCK)
      if (lock?.locked !== true) return -1
      const [gw] = yield* sql.unsafe<{ partitions: number; unknown: boolean | null; watermark: string | null }>(GLOBAL_WATERMARK, [sourceName, job])
      const watermark = gw === undefined || gw.partitions < partitions || gw.unknown === true ? -Infinity : storedTime(gw.watermark)
      if (state !== undefined) state.globalWatermark = watermark
      if (watermark === -Infinity) return 0
      let total = 0
      for (;;) {
        const due = (yield* sql.unsafe<{ hour: string }>(DUE, [watermark === Infinity ? "infinity" : formatTimestamp(watermark)])).map((r) => r.hour)
        if (due.length === 0) return total
        yield* sql.unsafe(CLEAR, [due])
        yield* sql.unsafe(ROLL, [due, formatTimestamp(now)])
        yield* sql.unsafe(UNMARK, [due])
        total += due.length
        if (due.length < 500) return total
      }
    }))
    if (state !== undefined) {
      state.lastRunAt = now
      if (rolled >= 0) {
        state.hoursRolled += rolled
        state.lastResult = rolled === 0 ? "nothing due" : `rolled ${rolled} hour${rolled === 1 ? "" : "s"}`
      } else state.lastResult = "another process is rolling"
    }
    return Math.max(rolled, 0)
  })

/**
 * A scoped fiber rolling what is due every `everyMs`; a failed run is logged and tried again
 * at the next. `status`: what the status page shows of it.
 */
export const schedule = (sourceName: string, job: string, partitions: number, everyMs: number, status?: ScheduledJobStatus) =>
  Effect.gen(function*() {
    const state: RollupState = { lastRunAt: undefined, lastResult: undefined, hoursRolled: 0, globalWatermark: -Infinity }
    const report = Effect.sync(() => {
      if (status === undefined) return
      status.lastRunAt = state.lastRunAt
      status.lastResult = state.lastResult
      status.nextRunAt = state.lastRunAt === undefined ? undefined : state.lastRunAt + everyMs
    })
    yield* Effect.forkScoped(Effect.repeat(
      rollDue(sourceName, job, partitions, state).pipe(
        Effect.catch((e) => Effect.sync(() => { state.lastResult = `failed: ${e.message}` }).pipe(
          Effect.andThen(Effect.logWarning(`hourly rollup failed: ${e.message}; trying again in ${everyMs} ms`))
        )),
        Effect.andThen(report)
      ),
      Schedule.spaced(everyMs)
    ))
    return state
  })
