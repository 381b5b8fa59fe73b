/**
 * The midnight export of one day (SPEC §6): that day's `shop.checkout_attribution` rows to
 * `${LAKE_DIR}/exports/checkouts/dt=D/part-0.parquet` and its one-row summary to
 * `${LAKE_DIR}/exports/daily_summary/dt=D/part-0.parquet`, typed as `domain/LakeTables.ts`
 * says (times are UTC instants, `TIMESTAMP WITH TIME ZONE`; money `DECIMAL(12,2)`).
 *
 * - **The day** D is [D 00:00, D+1 00:00) in `EXPORT_TZ`, computed by PostgreSQL
 *   (`D::timestamp AT TIME ZONE tz`), so a DST day has 23 or 25 hours.
 * - **Reading**: one streamed `SELECT` (one snapshot) through `@effect/sql-pg`, every value
 *   as text (money and times exactly), appended to an in-memory DuckDB table of text; the
 *   Parquet files are `COPY`s of the typed casts, the summary is computed from the same rows.
 * - **Atomic**: both files are written under `exports/.staging/` (outside the tables'
 *   folders: DuckDB's `**` glob descends into dot-folders), then put in place by rename: a
 *   new day's folder is renamed into place; a day already exported has its file swapped by a
 *   rename over it (atomic), the old one kept until both datasets are in place. Should the
 *   second rename fail, the first is undone: a failed run leaves the previous state visible.
 * - **Runs**: every run is a row of `shop.export_runs`, inserted `running` (committed) before
 *   anything is written, then `succeeded` with its rows or `failed` with the error.
 *   `recover`, called under the lock, marks runs left `running` by a dead process `failed`
 *   and removes the staging folders a crash left.
 * - **One process at a time**: `withLock` holds a PostgreSQL session advisory lock on a
 *   reserved connection of the pool for the duration of the work (the work uses other
 *   connections: the lock is the connection's, not the transaction's).
 *
 * Processing time (a run's `started_at`/`finished_at`) comes from `Clock`.
 *
 * @since 0.1.0
 */
import type { DuckDBConnection } from "@duckdb/node-api"
import { Cause, Clock, Context, Data, Effect, Exit, Layer, Option, Stream } from "effect"
import type { Scope } from "effect"
import { SqlClient } from "effect/sql"
import * as fs from "node:fs"
import * as path from "node:path"
import { dailySummary, exportedCheckouts, exportStagingDir, type LakeTable } from "../domain/LakeTables.ts"
import { type Day, type ExportHistory, isDay } from "./ExportCalendar.ts"

/**
 * Why an export could not run: the database (reading rows, recording the run, the lock) or
 * the lake (DuckDB, the disk). Retried at the next start or tick, never in a loop.
 */
export class ExportError extends Data.TaggedError("ExportError")<{
  readonly reason: "Database" | "Lake" | "BadDay"
  readonly message: string
  readonly cause?: unknown
}> {}

/** The day's figures, as written to `daily_summary`. Money as exact decimal text. */
export interface DaySummary {
  readonly day: Day
  readonly checkouts: number
  readonly paidCheckouts: number
  readonly units: number
  readonly revenue: string
  readonly profit: string
  /** attributed checkouts / checkouts; null for a day without checkouts */
  readonly attributedShare: number | null
}

export interface ExportResult {
  /** the run's id in `shop.export_runs` */
  readonly runId: string
  readonly day: Day
  /** rows in the checkouts file */
  readonly rows: number
  readonly summary: DaySummary
  readonly checkoutsFile: string
  readonly summaryFile: string
}

/** What a long export reports as it goes (`commands/Progress.ts` fits). */
export interface ExportProgress {
  readonly setTotal: (total: number) => void
  readonly update: (done: number) => Effect.Effect<void>
}

export interface ExportOptions {
  /** `LAKE_DIR` */
  readonly lakeDir: string
  /** `EXPORT_TZ`, a name PostgreSQL and Intl both know */
  readonly timeZone: string
  /** rows appended per step (and per progress update); default 5 000 */
  readonly batchRows?: number | undefined
  /**
   * Where the engine's progress is (`source_positions` of this source's job): a day is
   * complete once every task's watermark has passed its end, or has released all it read.
   * Absent: every day is complete (nothing reads beside the export, as for `export --date`).
   */
  readonly progress?: { readonly sourceName: string; readonly job: string } | undefined
}

/**
 * @category services
 */
export class MidnightExport extends Context.Service<MidnightExport, {
  /** Exports `day` (caller holds the lock: see `withLock`), recording the run; fails after recording it `failed`. */
  readonly exportDay: (day: Day, progress?: ExportProgress) => Effect.Effect<ExportResult, ExportError>
  /** The earliest checkout's day and the days with runs, for the catch-up. */
  readonly history: Effect.Effect<ExportHistory, ExportError>
  /** Runs `effect` holding the cluster-wide export lock; `None` (without running it) when another process holds it, unless `wait`. */
  readonly withLock: <A, E, R>(effect: Effect.Effect<A, E, R>, options?: { readonly wait?: boolean }) => Effect.Effect<Option.Option<A>, E | ExportError, R>
  /** Under the lock: runs left `running` become `failed`; staging folders left by a crash are removed. */
  readonly recover: Effect.Effect<void, ExportError>
  /** Whether the checkouts of `day` (and before) that the engine has read are all written (see `ExportOptions.progress`). */
  readonly complete: (day: Day) => Effect.Effect<boolean, ExportError>
}>()("insights/jobs/MidnightExport") {}

/** The advisory lock's key: `hashtext('insights/midnight-export')`, computed by PostgreSQL. */
const LOCK_KEY = "hashtext('insights/midnight-export')"

/** Why a run left `running` is failed by the next one. */
export const INTERRUPTED = "interrupted: the process stopped before the run finished"

const oneLine = (e: unknown): string => {
  const m = e instanceof Error ? e.message : typeof e === "object" && e !== null && "message" in e ? String((e as { message: unknown }).message) : String(e)
  return m.replace(/\s*\n\s*/g, " ").trim()
}

const dbError = (what: string) => (cause: unknown) => new ExportError({ reason: "Database", message: `${what}: ${oneLine(cause)}`, cause })
const lakeError = (what: string) => (cause: unknown) => new ExportError({ reason: "Lake", message: `${what}: ${oneLine(cause)}`, cause })

/** A DuckDB string literal. */
const literal = (s: string): string => `'${s.replaceAll("'", "''")}'`
const ident = (s: string): string => `"${s.replaceAll("\"", "\"\"")}"`

const isTimestamp = (type: string) => type.startsWith("TIMESTAMP")

/** PostgreSQL: a column as exact text; times as UTC ISO-8601 with microseconds. */
const pgText = (name: string, type: string): string =>
  isTimestamp(type)
    ? `to_char(${ident(name)} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ${ident(name)}`
    : `${ident(name)}::text AS ${ident(name)}`

/** DuckDB: the text column cast to the table's type. */
const typed = (table: LakeTable): string => table.columns.map((c) => `CAST(${ident(c.name)} AS ${c.type}) AS ${ident(c.name)}`).join(", ")

const fileName = "part-0.parquet"

const duck = <A>(what: string, f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: lakeError(what) })
const disk = <A>(what: string, f: () => A) => Effect.try({ try: f, catch: lakeError(what) })

/** An in-memory DuckDB for the life of the scope; spills, if it must, under `tempDir`. Loaded on first use (commands that never export do not pay for it). */
const openDuck = (tempDir: string): Effect.Effect<DuckDBConnection, ExportError, Scope.Scope> =>
  Effect.acquireRelease(
    duck("cannot start DuckDB", async () => {
      const { DuckDBInstance } = await import("@duckdb/node-api")
      const instance = await DuckDBInstance.create(":memory:", {
        temp_directory: tempDir, autoinstall_known_extensions: "false", autoload_known_extensions: "false"
      })
      const connection = await instance.connect()
      await connection.run("SET TimeZone = 'UTC'")
      return { instance, connection }
    }),
    ({ connection, instance }) => Effect.sync(() => {
      connection.closeSync()
      instance.closeSync()
    })
  ).pipe(Effect.map((d) => d.connection))

/** How one dataset's day folder was put in place, to undo it. */
type Published =
  | { readonly kind: "created"; readonly dir: string }
  | { readonly kind: "swapped"; readonly file: string; readonly previous: string | undefined }

/**
 * Puts `staged/part-0.parquet` in place as `final/part-0.parquet`: renames the folder when
 * the day has none yet; otherwise renames the file over the old one (atomic), keeping the
 * old one (a hard link) in `backupDir` until the run is through.
 */
const publish = (staged: string, final: string, backupDir: string): Published => {
  fs.mkdirSync(path.dirname(final), { recursive: true })
  const existing = fs.lstatSync(final, { throwIfNoEntry: false })
  if (existing === undefined) {
    fs.renameSync(staged, final)
    return { kind: "created", dir: final }
  }
  if (!existing.isDirectory()) throw new Error(`${final} exists and is not a folder`)
  const file = path.join(final, fileName)
  let previous: string | undefined
  if (fs.existsSync(file)) {
    fs.mkdirSync(backupDir, { recursive: true })
    previous = path.join(backupDir, fileName)
    fs.linkSync(file, previous)
  }
  fs.renameSync(path.join(staged, fileName), file)
  return { kind: "swapped", file, previous }
}

const unpublish = (p: Published): void => {
  if (p.kind === "created") fs.rmSync(p.dir, { recursive: true, force: true })
  else if (p.previous !== undefined) fs.renameSync(p.previous, p.file)
  else fs.rmSync(p.file, { force: true })
}

/** Other files in a replaced day folder (none are ours): removed, so the folder holds this run's file only. */
const dropOthers = (final: string): void => {
  for (const f of fs.readdirSync(final)) if (f !== fileName) fs.rmSync(path.join(final, f), { recursive: true, force: true })
}

/**
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(options: ExportOptions) {
  const sql = yield* SqlClient.SqlClient
  const tz = options.timeZone
  const batchRows = options.batchRows ?? 5_000
  const stagingRoot = path.join(options.lakeDir, exportStagingDir)
  const dayDir = (table: LakeTable, day: Day) => path.join(options.lakeDir, table.dir, `dt=${day}`)

  const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))

  /** the instant day `day` ends in EXPORT_TZ (the next day's 00:00 there) */
  const dayEnd = (day: Day) => sql`((${day}::date + 1)::timestamp AT TIME ZONE ${tz})`
  const dayRange = (day: Day) => sql`
    checkout_timestamp >= (${day}::date::timestamp AT TIME ZONE ${tz})
    AND checkout_timestamp < ${dayEnd(day)}`

  /** Writes both files under the staging folder and puts them in place; the rows and summary. */
  const write = (day: Day, runId: string, progress: ExportProgress | undefined) =>
    Effect.gen(function*() {
      const stage = path.join(stagingRoot, `run-${runId}-dt=${day}`)
      const stagedCheckouts = path.join(stage, "checkouts")
      const stagedSummary = path.join(stage, "daily_summary")
      yield* disk("cannot create the staging folder", () => {
        fs.mkdirSync(stagedCheckouts, { recursive: true })
        fs.mkdirSync(stagedSummary, { recursive: true })
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(stage, { recursive: true, force: true })))

      if (progress !== undefined) {
        const [count] = yield* sql<{ n: string }>`SELECT count(*)::text AS n FROM shop.checkout_attribution WHERE ${dayRange(day)}`.pipe(
          Effect.mapError(dbError("cannot count the day's checkouts"))
        )
        progress.setTotal(Number(count?.n ?? 0))
      }

      const db = yield* openDuck(path.join(stage, "duckdb-tmp"))
      const columns = exportedCheckouts.columns
      yield* duck("cannot create the staging table", () =>
        db.run(`CREATE TABLE staged (${columns.map((c) => `${ident(c.name)} VARCHAR`).join(", ")})`))
      const appender = yield* duck("cannot append", () => db.createAppender("staged"))
      // the snapshot before the read: every transaction it sees, the read sees too, so the
      // checkouts marked by those are in this run (see export_pending)
      yield* sql`UPDATE shop.export_runs SET snapshot = pg_current_snapshot() WHERE id = ${runId}::bigint`.pipe(
        Effect.mapError(dbError("cannot record the run's snapshot"))
      )
      let rows = 0
      yield* sql.unsafe<Record<string, string | null>>(
        `SELECT ${columns.map((c) => pgText(c.name, c.type)).join(", ")}
         FROM shop.checkout_attribution
         WHERE checkout_timestamp >= ($1::date::timestamp AT TIME ZONE $2)
           AND checkout_timestamp < (($1::date + 1)::timestamp AT TIME ZONE $2)
         ORDER BY checkout_timestamp, checkout_id`,
        [day, tz]
      ).stream.pipe(
        Stream.mapError(dbError("cannot read the day's checkouts")),
        Stream.rechunk(batchRows),
        Stream.runForEachArray((batch) =>
          Effect.gen(function*() {
            yield* disk("cannot append", () => {
              for (const row of batch) {
                for (const c of columns) {
                  const v = row[c.name]
                  if (v === null || v === undefined) appender.appendNull()
                  else appender.appendVarchar(v)
                }
                appender.endRow()
              }
            })
            rows += batch.length
            if (progress !== undefined) yield* progress.update(rows)
          })
        )
      )
      yield* disk("cannot append", () => appender.closeSync())

      const checkoutsFile = path.join(stagedCheckouts, fileName)
      const summaryFile = path.join(stagedSummary, fileName)
      yield* duck("cannot write the checkouts file", () =>
        db.run(`COPY (SELECT ${typed(exportedCheckouts)} FROM staged ORDER BY checkout_timestamp, checkout_id) TO ${literal(checkoutsFile)} (FORMAT parquet)`))
      const paid = "WHERE payment_status = 'Success'"
      const summarySql = `
        WITH t AS (SELECT ${typed(exportedCheckouts)} FROM staged)
        SELECT CAST(${literal(day)} AS DATE) AS day,
               CAST(count(*) AS BIGINT) AS checkouts,
               CAST(count(*) FILTER (${paid}) AS BIGINT) AS paid_checkouts,
               CAST(coalesce(sum(quantity) FILTER (${paid}), 0) AS BIGINT) AS units,
               CAST(coalesce(sum(total_amount) FILTER (${paid}), 0) AS DECIMAL(18,2)) AS revenue,
               CAST(coalesce(sum(profit) FILTER (${paid}), 0) AS DECIMAL(18,2)) AS profit,
               CASE WHEN count(*) = 0 THEN NULL ELSE CAST(count(click_id) AS DOUBLE) / count(*) END AS attributed_share
        FROM t`
      yield* duck("cannot write the summary file", () =>
        db.run(`COPY (SELECT ${dailySummary.columns.map((c) => `CAST(${ident(c.name)} AS ${c.type}) AS ${ident(c.name)}`).join(", ")} FROM (${summarySql})) TO ${literal(summaryFile)} (FORMAT parquet)`))
      const [s] = yield* duck("cannot read the summary back", async () =>
        (await db.runAndReadAll(`SELECT checkouts::VARCHAR AS checkouts, paid_checkouts::VARCHAR AS paid, units::VARCHAR AS units,
          revenue::VARCHAR AS revenue, profit::VARCHAR AS profit, attributed_share FROM read_parquet(${literal(summaryFile)})`)).getRowObjectsJson())
      if (s === undefined) return yield* new ExportError({ reason: "Lake", message: "the summary file has no row" })
      const summary: DaySummary = {
        day,
        checkouts: Number(s["checkouts"]),
        paidCheckouts: Number(s["paid"]),
        units: Number(s["units"]),
        revenue: String(s["revenue"]),
        profit: String(s["profit"]),
        attributedShare: s["attributed_share"] === null ? null : Number(s["attributed_share"])
      }

      // both files are complete: put them in place, the checkouts first; undo the first if the second fails
      const finalCheckouts = dayDir(exportedCheckouts, day)
      const finalSummary = dayDir(dailySummary, day)
      const first = yield* disk(`cannot put ${finalCheckouts} in place`, () => publish(stagedCheckouts, finalCheckouts, path.join(stage, "previous-checkouts")))
      yield* disk(`cannot put ${finalSummary} in place`, () => publish(stagedSummary, finalSummary, path.join(stage, "previous-summary"))).pipe(
        Effect.tapError(() => Effect.sync(() => {
          try {
            unpublish(first)
          } catch {
            // the checkouts stay in place without their summary; the run is recorded failed and retried
          }
        }))
      )
      yield* Effect.sync(() => {
        for (const dir of [finalCheckouts, finalSummary]) {
          try {
            dropOthers(dir)
          } catch {
            // a stray file someone else put there is left alone
          }
        }
      })
      return {
        runId, day, rows, summary,
        checkoutsFile: path.join(finalCheckouts, fileName),
        summaryFile: path.join(finalSummary, fileName)
      } satisfies ExportResult
    }).pipe(Effect.scoped)

  const exportDay = (day: Day, progress?: ExportProgress): Effect.Effect<ExportResult, ExportError> =>
    Effect.gen(function*() {
      if (!isDay(day)) return yield* new ExportError({ reason: "BadDay", message: `not a day (YYYY-MM-DD): ${day}` })
      const [run] = yield* sql<{ id: string }>`
        INSERT INTO shop.export_runs (day, started_at, status) VALUES (${day}::date, ${yield* now}, 'running')
        RETURNING id::text AS id`.pipe(Effect.mapError(dbError("cannot record the run")))
      const runId = run!.id
      return yield* write(day, runId, progress).pipe(
        Effect.onExit((exit) =>
          Effect.gen(function*() {
            const finishedAt = yield* now
            if (Exit.isSuccess(exit)) {
              yield* sql`UPDATE shop.export_runs SET status = 'succeeded', "rows" = ${exit.value.rows}, finished_at = ${finishedAt}
                WHERE id = ${runId}::bigint`
              yield* sql.unsafe(UNMARK, [tz]) // the marks this run (and the others) cover
            } else {
              const error = Cause.hasInterruptsOnly(exit.cause) ? INTERRUPTED : oneLine(Cause.squash(exit.cause))
              yield* sql`UPDATE shop.export_runs SET status = 'failed', error = ${error}, finished_at = ${finishedAt}
                WHERE id = ${runId}::bigint`
            }
          }).pipe(
            // the run stays `running`; the next run that takes the lock marks it failed
            Effect.catch((e) => Effect.logWarning(`cannot record the end of export run ${runId}: ${oneLine(e)}`))
          )
        )
      )
    })

  // the local days (in EXPORT_TZ) a marked UTC hour touches (two in a zone of half-hour offset)
  const touchedDays = `(VALUES ((p.hour AT TIME ZONE $1)::date), (((p.hour + interval '1 hour' - interval '1 microsecond') AT TIME ZONE $1)::date)) AS d(day)`
  const latestRuns = `latest AS (SELECT DISTINCT ON (day) day, snapshot, started_at FROM shop.export_runs WHERE status = 'succeeded' ORDER BY day, id DESC)`
  // a mark is in a run when its transaction is visible in the run's snapshot (runs before snapshots were recorded: by time)
  const inRun = `CASE WHEN l.snapshot IS NULL THEN p.marked_at <= l.started_at ELSE pg_visible_in_snapshot(p.xact, l.snapshot) END`
  const STALE = `WITH ${latestRuns}
    SELECT DISTINCT l.day::text AS day FROM shop.export_pending p CROSS JOIN LATERAL ${touchedDays}
    JOIN latest l ON l.day = d.day WHERE NOT (${inRun}) ORDER BY 1`
  const UNMARK = `WITH ${latestRuns}
    DELETE FROM shop.export_pending p WHERE NOT EXISTS (
      SELECT 1 FROM ${touchedDays} LEFT JOIN latest l ON l.day = d.day WHERE l.day IS NULL OR NOT (${inRun}))`

  const history: Effect.Effect<ExportHistory, ExportError> = Effect.gen(function*() {
    const [earliest] = yield* sql<{ day: string | null }>`
      SELECT ((min(checkout_timestamp) AT TIME ZONE ${tz})::date)::text AS day FROM shop.checkout_attribution`
    const days = yield* sql<{ day: string; succeeded: boolean }>`
      SELECT day::text AS day, bool_or(status = 'succeeded') AS succeeded FROM shop.export_runs GROUP BY day ORDER BY day`
    const stale = yield* sql.unsafe<{ day: string }>(STALE, [tz])
    return {
      earliestCheckoutDay: earliest?.day ?? undefined,
      succeeded: days.filter((d) => d.succeeded).map((d) => d.day),
      unsucceeded: days.filter((d) => !d.succeeded).map((d) => d.day),
      stale: stale.map((d) => d.day)
    }
  }).pipe(Effect.mapError(dbError("cannot read the export history")))

  const withLock = <A, E, R>(effect: Effect.Effect<A, E, R>, lockOptions?: { readonly wait?: boolean }) =>
    Effect.gen(function*() {
      const conn = yield* sql.reserve.pipe(Effect.mapError(dbError("cannot reserve a connection for the export lock")))
      const tryLock = conn.execute(`SELECT pg_try_advisory_lock(${LOCK_KEY}) AS locked`, [], undefined).pipe(
        Effect.map((rows) => (rows[0] as { locked: boolean } | undefined)?.locked === true),
        Effect.mapError(dbError("cannot take the export lock"))
      )
      let locked = yield* tryLock
      if (!locked && lockOptions?.wait === true) {
        yield* Effect.logInfo("waiting for the export another process is running")
        while (!locked) {
          yield* Effect.sleep("1 second")
          locked = yield* tryLock
        }
      }
      if (!locked) return Option.none<A>()
      yield* Effect.addFinalizer(() => Effect.ignore(conn.execute(`SELECT pg_advisory_unlock(${LOCK_KEY})`, [], undefined)))
      return Option.some(yield* effect)
    }).pipe(Effect.scoped)

  const recover: Effect.Effect<void, ExportError> = Effect.gen(function*() {
    const stale = yield* sql<{ id: string }>`
      UPDATE shop.export_runs SET status = 'failed', error = ${INTERRUPTED}, finished_at = ${yield* now}
      WHERE status = 'running' RETURNING id::text AS id`.pipe(Effect.mapError(dbError("cannot recover interrupted runs")))
    if (stale.length > 0) yield* Effect.logWarning(`export runs ${stale.map((r) => r.id).join(", ")} were interrupted: recorded failed`)
    // under the lock, no run is writing: whatever is staged was left by a crash
    const left = yield* Effect.sync(() => {
      try {
        const entries = fs.readdirSync(stagingRoot)
        for (const e of entries) fs.rmSync(path.join(stagingRoot, e), { recursive: true, force: true })
        return entries
      } catch {
        return [] // no staging folder (or no lake yet): nothing to remove; a run reports a lake it cannot write
      }
    })
    if (left.length > 0) yield* Effect.logInfo(`removed ${left.length} staging folder(s) left by an interrupted export`)
  })

  // per task (partition number): its watermark (the same on each of its partitions' rows) and
  // the largest event time it read; waiting: a task short of the day's end that still holds
  // events it read (its watermark is below their time)
  const complete = (day: Day): Effect.Effect<boolean, ExportError> => {
    const progress = options.progress
    if (progress === undefined) return Effect.succeed(true)
    return sql<{ waiting: number }>`
      SELECT count(*)::int AS waiting FROM (
        SELECT "partition", min(watermark) AS w, max(max_event_time) AS m
        FROM shop.source_positions WHERE source = ${progress.sourceName} AND job = ${progress.job}
        GROUP BY "partition") t
      WHERE t.m IS NOT NULL
        AND NOT coalesce(t.w >= ${dayEnd(day)}, false)
        AND NOT coalesce(t.w >= t.m, false)`.pipe(
      Effect.map((rows) => (rows[0]?.waiting ?? 0) === 0),
      Effect.mapError(dbError("cannot read the engine's progress"))
    )
  }

  return MidnightExport.of({ exportDay, history, withLock, recover, complete })
})

/**
 * @category layers
 */
export const layer = (options: ExportOptions) => Layer.effect(MidnightExport, make(options))
