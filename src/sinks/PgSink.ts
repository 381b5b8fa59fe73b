/**
 * Writes the attribution job's rows to PostgreSQL: checkout rows, late events, ingest errors
 * and the source positions they cover, all in ONE transaction, so after a crash the tables
 * and the positions agree and a restart resumes exactly (SPEC §5).
 *
 * - **Fenced.** The transaction first checks, under a share lock, that every task it writes
 *   for is still claimed with the epoch the batch carries (`shop.task_owners`); if another
 *   member has claimed one since, nothing is written and the sink says which tasks are fenced.
 * - **No message can poison it.** A batch PostgreSQL refuses for a reason retrying cannot
 *   fix (a value out of a column's range, a row too large for an index, text PostgreSQL cannot
 *   hold) is written again with each statement split in halves under savepoints until the
 *   refused rows are isolated; each becomes an `ingest_errors` row (its payload escaped so
 *   PostgreSQL can hold it) and the rest is written. A row that cannot be stored even as an
 *   error is logged and counted, and the job goes on.
 * - **Transient failures** (connection lost, deadlock) retry the whole batch with capped
 *   backoff; meanwhile backpressure pauses the reads.
 *
 * Every statement is a keyed upsert over `json_populate_recordset` of one JSON parameter:
 * the statement text never changes (prepared once), a batch of any size is one round trip,
 * and PostgreSQL does the typing.
 */
import { Clock, Data, Duration, Effect, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import type { AttributionRow, IngestErrorRow, LateEventRow, Sourced } from "../domain/Rows.ts"
import { storableText } from "../domain/StorableText.ts"
import { formatTimestamp } from "../domain/Timestamp.ts"
import type { TaskClaim, TaskPosition } from "../engine/Topology.ts"
import * as PositionStore from "./PositionStore.ts"
import * as TaskOwnership from "./TaskOwnership.ts"
import { transaction } from "./Database.ts"

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

/**
 * The hours of the checkouts written: the rollup rolls them (again) once the global watermark
 * has passed them, and a day already exported is exported again (one statement, both marks).
 */
export const MARK_HOURS = `
WITH h AS (SELECT unnest($1::timestamptz[]) AS hour),
rollup AS (
  INSERT INTO shop.rollup_pending (hour, marked_at) SELECT hour, $2::timestamptz FROM h
  ON CONFLICT (hour) DO UPDATE SET marked_at = EXCLUDED.marked_at)
INSERT INTO shop.export_pending (hour, marked_at) SELECT hour, $2::timestamptz FROM h
ON CONFLICT (hour) DO UPDATE SET marked_at = EXCLUDED.marked_at, xact = EXCLUDED.xact`

const HOUR_MS = 3_600_000

/** The distinct UTC hours of the rows' checkout times. */
const hoursOf = (rows: ReadonlyArray<AttributionRow>): Array<string> => {
  const hours = new Set<number>()
  for (const r of rows) hours.add(Math.floor(Date.parse(r.checkout_timestamp) / HOUR_MS) * HOUR_MS)
  return [...hours].sort((a, b) => a - b).map(formatTimestamp)
}

const ERROR_COLUMNS = `input, source, "partition", "offset", payload, error, recorded_at`
const INSERT_ERRORS = `
INSERT INTO shop.ingest_errors (${ERROR_COLUMNS})
SELECT ${ERROR_COLUMNS} FROM json_populate_recordset(NULL::shop.ingest_errors, $1::json)
ON CONFLICT (input, source, "partition", "offset", payload_md5) DO NOTHING`

/** Why the sink cannot go on: PostgreSQL refuses in a way no retry or split can fix. */
export class SinkError extends Data.TaggedError("SinkError")<{
  readonly reason: "Unavailable" | "Fatal"
  readonly message: string
  readonly cause?: unknown
}> {
  get isRetryable(): boolean {
    return this.reason === "Unavailable"
  }
}

/** The transaction found tasks claimed by another member: rolled back, nothing written. */
class Fenced {
  readonly _tag = "Fenced"
  constructor(readonly tasks: ReadonlyArray<number>) {}
}

/** SQLSTATE of a PostgreSQL error, when it has one. */
const sqlState = (e: SqlError): string | undefined => {
  const cause = e.reason.cause as { readonly code?: unknown } | undefined
  return typeof cause?.code === "string" ? cause.code : undefined
}

/**
 * Worth writing again: what the driver calls retryable (a lost connection, a deadlock, a
 * serialization failure, a timeout) and what the server says while it stops, restarts or is
 * full: connection exceptions (class 08), admin and crash shutdown and "cannot connect now"
 * (57P01–57P03), insufficient resources (class 53). The driver files the server's shutdown
 * messages as unknown errors, which would otherwise fail the job while PostgreSQL restarts.
 */
export const isTransient = (e: SqlError): boolean => {
  if (e.isRetryable) return true
  const code = sqlState(e)
  // 25P03 / 57P05: the server ended a session left idle (in a transaction) too long, a frozen member's
  return code !== undefined && (code.startsWith("08") || code.startsWith("53") || code === "57P01" || code === "57P02" || code === "57P03" ||
    code === "25P03" || code === "57P05")
}

/** PostgreSQL's own words for the error. */
const pgMessage = (e: SqlError): string => {
  const cause = e.reason.cause as { readonly message?: unknown } | undefined
  return typeof cause?.message === "string" ? cause.message : e.message
}

/**
 * Refused for the data itself, which no retry fixes but leaving the row out does: data
 * exceptions (22: out of range, bad encoding), integrity (23), cardinality (21), program
 * limits (54: index row too large).
 */
export const isRefusal = (e: SqlError): boolean => {
  const code = sqlState(e)
  return !isTransient(e) && code !== undefined && ["21", "22", "23", "54"].includes(code.slice(0, 2))
}

/** 100 ms, doubling, at most 5 s apart, for as long as the error is retryable. */
const retrySchedule = Schedule.exponential("100 millis").pipe(
  Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.seconds(5))))
)

export interface AttributionBatch {
  readonly attribution: ReadonlyArray<Sourced<AttributionRow>>
  readonly late: ReadonlyArray<Sourced<LateEventRow>>
  readonly errors: ReadonlyArray<IngestErrorRow>
  readonly positions: ReadonlyArray<TaskPosition>
  readonly claims: ReadonlyArray<TaskClaim>
}

export interface WriteResult {
  /** tasks found claimed by another member: nothing of the batch was written */
  readonly fenced: ReadonlyArray<number>
  /** rows PostgreSQL refused, written as ingest errors instead */
  readonly refused: ReadonlyArray<IngestErrorRow>
  /** ingest errors that could not be stored at all (logged) */
  readonly unstorable: number
}

export interface PgSinkOptions {
  /** names this input in task_owners and source_positions, e.g. "kafka:insights" or "replay" */
  readonly sourceName: string
  /** the job whose positions these are */
  readonly job: string
}

/** An ingest error row PostgreSQL can hold whatever arrived. */
const storableError = (row: IngestErrorRow): IngestErrorRow => ({
  ...row,
  input: storableText(row.input),
  source: storableText(row.source),
  payload: storableText(row.payload),
  error: storableText(row.error)
})

export const make = (options: PgSinkOptions) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { sourceName, job } = options

    const run = (statement: string, rows: ReadonlyArray<unknown>) =>
      rows.length === 0 ? Effect.void : Effect.asVoid(sql.unsafe(statement, [JSON.stringify(rows)]))

    /**
     * Writes `rows` under a savepoint; refused, splits them in halves until each refused row
     * is alone, and returns those with PostgreSQL's reason.
     */
    const isolate = <R>(statement: string, rows: ReadonlyArray<R>): Effect.Effect<Array<{ row: R; error: string }>, SqlError> =>
      rows.length === 0 ? Effect.succeed([]) : transaction(sql, run(statement, rows)).pipe(
        Effect.as([] as Array<{ row: R; error: string }>),
        Effect.catchIf(isRefusal, (e) => {
          if (rows.length === 1) return Effect.succeed([{ row: rows[0]!, error: pgMessage(e) }])
          const half = rows.length >> 1
          return Effect.zipWith(isolate(statement, rows.slice(0, half)), isolate(statement, rows.slice(half)), (a, b) => [...a, ...b])
        })
      )

    const refusedAsError = (origin: Sourced<unknown>["origin"], error: string, recordedAt: string): IngestErrorRow =>
      storableError({
        input: origin.input, source: origin.topic, partition: origin.partition, offset: origin.offset,
        payload: origin.payload, error: `refused by PostgreSQL: ${error}`, recorded_at: recordedAt
      })

    const fenceCheck = (claims: ReadonlyArray<TaskClaim>) =>
      Effect.gen(function*() {
        const fenced = yield* TaskOwnership.fenced(sql, sourceName, claims)
        if (fenced.length > 0) return yield* Effect.fail(new Fenced(fenced))
      })

    const write = (batch: AttributionBatch): Effect.Effect<WriteResult, SinkError> =>
      Effect.gen(function*() {
        const recordedAt = formatTimestamp(yield* Clock.currentTimeMillis)
        const errors = batch.errors.map(storableError)
        const late = batch.late.map((l) => ({ ...l.row, payload: storableText(l.row.payload) }))
        const attribution = batch.attribution.map((a) => a.row)
        const positions = PositionStore.rows(sourceName, job, batch.positions, recordedAt)

        // The common case: four statements, no savepoints.
        const fast = transaction(sql, Effect.gen(function*() {
          yield* fenceCheck(batch.claims)
          yield* run(UPSERT_ATTRIBUTION, attribution)
          if (attribution.length > 0) yield* sql.unsafe(MARK_HOURS, [hoursOf(attribution), recordedAt])
          yield* run(INSERT_LATE, late)
          yield* run(INSERT_ERRORS, errors)
          yield* run(PositionStore.UPSERT, positions)
          return { refused: [] as Array<IngestErrorRow>, unstorable: 0 }
        }))

        // Something in the batch was refused: find it, record it as an ingest error, write the rest.
        const careful = transaction(sql, Effect.gen(function*() {
          yield* fenceCheck(batch.claims)
          const refused: Array<IngestErrorRow> = []
          const badRows = yield* isolate(UPSERT_ATTRIBUTION, attribution)
          const byId = new Map(batch.attribution.map((a) => [a.row.checkout_id, a]))
          for (const { row, error } of badRows) refused.push(refusedAsError(byId.get(row.checkout_id)!.origin, error, recordedAt))
          if (attribution.length > 0) yield* sql.unsafe(MARK_HOURS, [hoursOf(attribution), recordedAt])
          const badLate = yield* isolate(INSERT_LATE, late)
          const lateByKey = new Map(batch.late.map((l) => [`${l.row.topic}\u0000${l.row.event_id}`, l]))
          for (const { row, error } of badLate) refused.push(refusedAsError(lateByKey.get(`${row.topic}\u0000${row.event_id}`)!.origin, error, recordedAt))
          const unstorable = yield* isolate(INSERT_ERRORS, [...errors, ...refused])
          for (const { row, error } of unstorable) {
            yield* Effect.logError(`an ingest error could not be stored (${error}): ${row.input} ${row.source}/${row.partition}@${row.offset}`)
          }
          yield* run(PositionStore.UPSERT, positions)
          return { refused, unstorable: unstorable.length }
        }))

        const attempt = fast.pipe(
          Effect.catchIf((e): e is SqlError => !(e instanceof Fenced) && isRefusal(e), (e) =>
            Effect.logWarning(`sink: PostgreSQL refused part of a batch (${pgMessage(e)}); isolating the refused rows`).pipe(Effect.andThen(careful)))
        )
        return yield* attempt.pipe(
          // A transaction is all or nothing and every statement an idempotent upsert, so a
          // batch that failed on a lost connection or a deadlock is simply written again; while
          // PostgreSQL is away the sink waits here and backpressure pauses the reads.
          Effect.tapError((e) => !(e instanceof Fenced) && isTransient(e) ? Effect.logWarning(`sink: ${pgMessage(e)}; retrying`) : Effect.void),
          Effect.retry({ while: (e) => !(e instanceof Fenced) && isTransient(e), schedule: retrySchedule }),
          Effect.map((r): WriteResult => ({ fenced: [], ...r })),
          Effect.catch((e) =>
            e instanceof Fenced
              ? Effect.succeed<WriteResult>({ fenced: e.tasks, refused: [], unstorable: 0 })
              : Effect.fail(new SinkError({ reason: isTransient(e) ? "Unavailable" : "Fatal", message: `PostgreSQL: ${pgMessage(e)}`, cause: e })))
        )
      })

    return { write } as const
  })

export type PgSink = Effect.Success<ReturnType<typeof make>>
