/**
 * The midnight export on a real PostgreSQL, its files read back by DuckDB
 * (`read_parquet(..., hive_partitioning = true)`, not through `insights query`): the day's
 * rows, exactly, with their types; the day's bounds in EXPORT_TZ; the same rows on a second
 * run; an empty day's typed files; a crash's staging folder invisible and removed at the
 * next start; a disk that refuses leaves a failed run and nothing half-visible; the lock
 * lets one process at a time; the start's catch-up exports every pending day once, even
 * with two processes starting together.
 */
import { DuckDBInstance } from "@duckdb/node-api"
import { Effect, Layer, Option } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { dailySummary, exportedCheckouts } from "../../src/domain/LakeTables.ts"
import { addDays, lastDueDay } from "../../src/jobs/ExportCalendar.ts"
import * as ExportSchedule from "../../src/jobs/ExportSchedule.ts"
import * as MidnightExport from "../../src/jobs/MidnightExport.ts"
import * as Database from "../../src/sinks/Database.ts"
import { MARK_HOURS } from "../../src/sinks/PgSink.ts"
import { cents, checkout, type CheckoutRow, insert, isoMicros, micros, money, usOf } from "../support/Checkouts.ts"
import { createDatabase, dropDatabase, postgresAvailable, query } from "../support/TestDatabase.ts"

const pgOk = await postgresAvailable()

/** Runs `f` with a MidnightExport on `url` (migrated). */
const withExport = <A, E>(url: string, options: MidnightExport.ExportOptions, f: (m: MidnightExport.MidnightExport["Service"]) => Effect.Effect<A, E>) =>
  Effect.runPromise(Effect.gen(function*() {
    const m = yield* MidnightExport.make(options)
    return yield* f(m)
  }).pipe(Effect.provide(Database.layer(url)), Effect.scoped))

/** The export's result, or its error (as a value). */
const exportDay = (url: string, options: MidnightExport.ExportOptions, day: string) =>
  withExport(url, options, (m) => m.withLock(Effect.result(m.exportDay(day))).pipe(Effect.map(Option.getOrThrow)))

/** DuckDB in memory, for reading the files back. */
const duck = async () => {
  const instance = await DuckDBInstance.create(":memory:")
  const c = await instance.connect()
  await c.run("SET TimeZone = 'UTC'")
  return {
    rows: async (q: string) => (await c.runAndReadAll(q)).getRowObjectsJson(),
    close: () => { c.closeSync(); instance.closeSync() }
  }
}

const lit = (s: string) => `'${s.replaceAll("'", "''")}'`
const glob = (lake: string, dir: string) => lit(path.join(lake, dir, "**/*.parquet"))

/** The exported rows as text, ordered, in the shape they went in. */
const readCheckouts = async (lake: string, day?: string) => {
  const d = await duck()
  try {
    return await d.rows(`
      SELECT dt::VARCHAR AS dt, checkout_id, user_id, product_id, quantity, shipping_cost::VARCHAR AS shipping_cost, discount,
             payment_method, payment_status, payment_description, shipping_address,
             epoch_us(checkout_timestamp)::VARCHAR AS checkout_us, gender, category, product_name, brand,
             total_amount::VARCHAR AS total_amount, profit::VARCHAR AS profit, click_id, source,
             epoch_us(click_timestamp)::VARCHAR AS click_us, is_late, epoch_us(written_at)::VARCHAR AS written_us
      FROM read_parquet(${glob(lake, "exports/checkouts")}, hive_partitioning = true)
      ${day === undefined ? "" : `WHERE dt = DATE ${lit(day)}`}
      ORDER BY checkout_us, checkout_id`)
  } finally {
    d.close()
  }
}

const readSummary = async (lake: string, day: string) => {
  const d = await duck()
  try {
    return await d.rows(`
      SELECT day::VARCHAR AS day, checkouts, paid_checkouts, units, revenue::VARCHAR AS revenue, profit::VARCHAR AS profit, attributed_share
      FROM read_parquet(${glob(lake, "exports/daily_summary")}, hive_partitioning = true) WHERE dt = DATE ${lit(day)}`)
  } finally {
    d.close()
  }
}

/** What the checkouts file should hold for `rows`, as readCheckouts shows it. */
const expected = (rows: ReadonlyArray<CheckoutRow>, day: string) =>
  [...rows].sort((a, b) => Number(micros(a.checkout_timestamp) - micros(b.checkout_timestamp)) || (a.checkout_id < b.checkout_id ? -1 : 1))
    .map((r) => ({
      dt: day, checkout_id: r.checkout_id, user_id: r.user_id, product_id: r.product_id, quantity: r.quantity,
      shipping_cost: r.shipping_cost, discount: Number(r.discount), payment_method: r.payment_method, payment_status: r.payment_status,
      payment_description: r.payment_description, shipping_address: r.shipping_address,
      checkout_us: usOf(r.checkout_timestamp), gender: r.gender, category: r.category, product_name: r.product_name, brand: r.brand,
      total_amount: r.total_amount, profit: r.profit, click_id: r.click_id, source: r.source,
      click_us: r.click_timestamp === null ? null : usOf(r.click_timestamp), is_late: r.is_late, written_us: usOf(r.written_at)
    }))

const summaryOf = (rows: ReadonlyArray<CheckoutRow>, day: string) => {
  const paid = rows.filter((r) => r.payment_status === "Success")
  return {
    day,
    checkouts: String(rows.length),
    paid_checkouts: String(paid.length),
    units: String(paid.reduce((a, r) => a + r.quantity, 0)),
    revenue: money(paid.reduce((a, r) => a + cents(r.total_amount), 0)),
    profit: money(paid.reduce((a, r) => a + cents(r.profit), 0)),
    attributed_share: rows.length === 0 ? null : rows.filter((r) => r.click_id !== null).length / rows.length
  }
}

const runs = (url: string, day?: string) =>
  query<{ id: string; day: string; status: string; rows: string | null; error: string | null; finished: boolean }>(url,
    `SELECT id::text, day::text, status, "rows"::text AS rows, error, finished_at IS NOT NULL AS finished
     FROM shop.export_runs ${day === undefined ? "" : "WHERE day = $1::date"} ORDER BY id`, day === undefined ? [] : [day])

/** every file under `dir`, relative */
const files = (dir: string): Array<string> =>
  fs.existsSync(dir) ? (fs.readdirSync(dir, { recursive: true }) as Array<string>).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort() : []

describe.skipIf(!pgOk)("midnight export on PostgreSQL, read back by DuckDB", () => {
  let db: { url: string; name: string }
  let tmp: string
  const D = "2026-11-23"
  // the day's rows, its bounds included; the neighbours' just outside
  const inside: Array<CheckoutRow> = []
  beforeAll(async () => {
    db = await createDatabase("insights_export")
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "export-"))
    await withExport(db.url, { lakeDir: path.join(tmp, "unused"), timeZone: "UTC" }, () => Effect.void) // migrations
    const start = micros(`${D}T00:00:00.000Z`)
    const dayUs = 86_400_000_000n
    inside.push(checkout("k-first", isoMicros(start), 0), checkout("k-last", isoMicros(start + dayUs - 1n), 1))
    for (let i = 2; i < 1_200; i++) inside.push(checkout(`k${String(i).padStart(5, "0")}`, isoMicros(start + BigInt(i) * 71_999_937n + 7n), i))
    inside.push(checkout("k-same-time-b", isoMicros(start + 5_000_000n), 4), checkout("k-same-time-a", isoMicros(start + 5_000_000n), 5))
    await insert(db.url, [
      ...inside,
      checkout("k-before", isoMicros(start - 1n), 3),
      checkout("k-after", isoMicros(start + dayUs), 6),
      // Tokyo's D is [D-1 15:00Z, D 15:00Z)
      checkout("k-tokyo-first", `2026-11-22T15:00:00.000000Z`, 8)
    ])
  })
  afterAll(async () => {
    if (db) await dropDatabase(db.name)
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  })

  it("exports the day's rows exactly, typed; the summary's counts and sums equal what went in; the run is recorded", async () => {
    const lake = path.join(tmp, "lake-utc")
    const progress = { total: -1, last: -1 }
    const result = await withExport(db.url, { lakeDir: lake, timeZone: "UTC", batchRows: 250 }, (m) =>
      m.exportDay(D, {
        setTotal: (n) => { progress.total = n },
        update: (n) => Effect.sync(() => { progress.last = n })
      }))
    expect(result.rows).toBe(inside.length)
    expect(progress).toEqual({ total: inside.length, last: inside.length })
    expect(files(path.join(lake, "exports"))).toEqual([`checkouts/dt=${D}/part-0.parquet`, `daily_summary/dt=${D}/part-0.parquet`])

    expect(await readCheckouts(lake)).toEqual(expected(inside, D))
    const [summary] = await readSummary(lake, D)
    const want = summaryOf(inside, D)
    expect({ ...summary, attributed_share: undefined }).toEqual({ ...want, attributed_share: undefined })
    expect(summary!["attributed_share"]).toBeCloseTo(want.attributed_share!, 12)
    expect(result.summary).toMatchObject({ checkouts: inside.length, revenue: want.revenue, profit: want.profit })

    // the types: as domain/LakeTables.ts says; times are UTC instants in Parquet
    const d = await duck()
    try {
      const described = await d.rows(`DESCRIBE SELECT * FROM read_parquet(${lit(result.checkoutsFile)}, hive_partitioning = false)`)
      expect(described.map((c) => [c["column_name"], c["column_type"]])).toEqual(exportedCheckouts.columns.map((c) => [c.name, c.type]))
      const summaryTypes = await d.rows(`DESCRIBE SELECT * FROM read_parquet(${lit(result.summaryFile)}, hive_partitioning = false)`)
      expect(summaryTypes.map((c) => [c["column_name"], c["column_type"]])).toEqual(dailySummary.columns.map((c) => [c.name, c.type]))
      const schema = await d.rows(`SELECT name, logical_type FROM parquet_schema(${lit(result.checkoutsFile)}) WHERE name IN ('checkout_timestamp', 'total_amount')`)
      expect(Object.fromEntries(schema.map((s) => [s["name"], s["logical_type"]]))).toEqual({
        checkout_timestamp: expect.stringContaining("isAdjustedToUTC=1"),
        total_amount: "DecimalType(scale=2, precision=12)"
      })
    } finally {
      d.close()
    }
    const [run] = await runs(db.url, D)
    expect(run).toMatchObject({ day: D, status: "succeeded", rows: String(inside.length), error: null, finished: true })
  })

  it("the day's bounds are EXPORT_TZ's: Asia/Tokyo's D is [D-1 15:00Z, D 15:00Z)", async () => {
    const lake = path.join(tmp, "lake-tokyo")
    const result = await exportDay(db.url, { lakeDir: lake, timeZone: "Asia/Tokyo" }, D)
    expect(result._tag).toBe("Success")
    const ids = (await readCheckouts(lake)).map((r) => r["checkout_id"])
    const tokyoEnd = micros(`${D}T15:00:00.000Z`)
    const want = ["k-tokyo-first", "k-before", ...inside.filter((r) => micros(r.checkout_timestamp) < tokyoEnd).map((r) => r.checkout_id)]
    expect([...ids].sort()).toEqual([...want].sort())
    expect(ids).not.toContain("k-last")
  })

  it("running it again replaces the day's files with the same rows", async () => {
    const lake = path.join(tmp, "lake-twice")
    const options = { lakeDir: lake, timeZone: "UTC" }
    await exportDay(db.url, options, D)
    const first = await readCheckouts(lake)
    const firstSummary = await readSummary(lake, D)
    await exportDay(db.url, options, D)
    expect(await readCheckouts(lake)).toEqual(first)
    expect(await readSummary(lake, D)).toEqual(firstSummary)
    expect(files(path.join(lake, "exports"))).toEqual([`checkouts/dt=${D}/part-0.parquet`, `daily_summary/dt=${D}/part-0.parquet`])
    expect((await runs(db.url, D)).filter((r) => r.status === "succeeded").length).toBeGreaterThanOrEqual(2)
  })

  it("a day without checkouts gets its empty, typed files and a succeeded run: no sales is not 'not exported'", async () => {
    const lake = path.join(tmp, "lake-empty")
    const empty = "2026-11-10"
    const result = await exportDay(db.url, { lakeDir: lake, timeZone: "UTC" }, empty)
    expect(result._tag).toBe("Success")
    expect(files(path.join(lake, "exports"))).toEqual([`checkouts/dt=${empty}/part-0.parquet`, `daily_summary/dt=${empty}/part-0.parquet`])
    expect(await readCheckouts(lake)).toEqual([])
    expect(await readSummary(lake, empty)).toEqual([{
      day: empty, checkouts: "0", paid_checkouts: "0", units: "0", revenue: "0.00", profit: "0.00", attributed_share: null
    }])
    const d = await duck()
    try {
      const described = await d.rows(`DESCRIBE SELECT * FROM read_parquet(${lit(path.join(lake, "exports/checkouts", `dt=${empty}`, "part-0.parquet"))}, hive_partitioning = false)`)
      expect(described.map((c) => [c["column_name"], c["column_type"]])).toEqual(exportedCheckouts.columns.map((c) => [c.name, c.type]))
    } finally {
      d.close()
    }
    expect(await runs(db.url, empty)).toEqual([expect.objectContaining({ status: "succeeded", rows: "0", finished: true })])
  })

  it("a crash between write and rename: the staged files are not visible, and the next start removes them and fails the run", async () => {
    const lake = path.join(tmp, "lake-crash")
    const options = { lakeDir: lake, timeZone: "UTC" }
    await exportDay(db.url, options, D)
    // what a process killed just before its renames leaves: a run `running`, complete files under staging
    const [stale] = await query<{ id: string }>(db.url,
      `INSERT INTO shop.export_runs (day, started_at, status) VALUES ('2026-11-24', now(), 'running') RETURNING id::text AS id`)
    const staged = path.join(lake, "exports/.staging", `run-${stale!.id}-dt=2026-11-24`)
    for (const dataset of ["checkouts", "daily_summary"]) {
      fs.mkdirSync(path.join(staged, dataset), { recursive: true })
      fs.copyFileSync(path.join(lake, "exports", dataset, `dt=${D}`, "part-0.parquet"), path.join(staged, dataset, "part-0.parquet"))
    }
    const visible = await readCheckouts(lake)
    expect(new Set(visible.map((r) => r["dt"]))).toEqual(new Set([D]))
    expect(visible.length).toBe(inside.length)

    // the next start: a catch-up under the lock (nothing else due for this lake's history: D's neighbours exported below)
    await withExport(db.url, options, (m) => m.withLock(m.recover))
    expect(fs.existsSync(staged)).toBe(false)
    expect(await runs(db.url, "2026-11-24")).toEqual([
      expect.objectContaining({ id: stale!.id, status: "failed", error: MidnightExport.INTERRUPTED, finished: true })
    ])
  })

  it("LAKE_DIR that is a file: the run is recorded failed with the error; nothing is written", async () => {
    const lake = path.join(tmp, "lake-is-a-file")
    fs.writeFileSync(lake, "not a folder")
    const result = await exportDay(db.url, { lakeDir: lake, timeZone: "UTC" }, "2026-11-21")
    expect(result._tag).toBe("Failure")
    const error = result._tag === "Failure" ? result.failure : undefined
    expect(error).toMatchObject({ _tag: "ExportError", reason: "Lake" })
    expect(error?.message).toMatch(/cannot create the staging folder: .*ENOTDIR/)
    expect(await runs(db.url, "2026-11-21")).toEqual([
      expect.objectContaining({ status: "failed", rows: null, error: error!.message, finished: true })
    ])
    expect(fs.readFileSync(lake, "utf8")).toBe("not a folder")
  })

  it("the summary cannot be put in place: the checkouts put in place just before are taken back, for a new day and for a replaced one", async () => {
    const lake = path.join(tmp, "lake-blocked")
    const options = { lakeDir: lake, timeZone: "UTC" }
    // a new day: its summary folder is blocked by a file
    fs.mkdirSync(path.join(lake, "exports/daily_summary"), { recursive: true })
    fs.writeFileSync(path.join(lake, "exports/daily_summary", `dt=${D}`), "in the way")
    const blocked = await exportDay(db.url, options, D)
    expect(blocked._tag).toBe("Failure")
    expect(fs.existsSync(path.join(lake, "exports/checkouts", `dt=${D}`))).toBe(false)
    expect(files(path.join(lake, "exports/.staging"))).toEqual([])
    const [failed] = (await runs(db.url, D)).slice(-1)
    expect(failed).toMatchObject({ status: "failed", error: expect.stringContaining(`cannot put ${path.join(lake, "exports/daily_summary", `dt=${D}`)} in place`) })

    // a day exported before, run again with a new row while its summary file cannot be replaced
    fs.rmSync(path.join(lake, "exports/daily_summary", `dt=${D}`))
    expect((await exportDay(db.url, options, D))._tag).toBe("Success")
    const before = await readCheckouts(lake)
    await insert(db.url, [checkout("k-written-later", `${D}T12:00:00.000001Z`, 10)])
    const summaryFile = path.join(lake, "exports/daily_summary", `dt=${D}`, "part-0.parquet")
    const saved = fs.readFileSync(summaryFile)
    fs.rmSync(summaryFile)
    fs.mkdirSync(path.join(summaryFile, "in-the-way"), { recursive: true }) // a rename over it fails
    const again = await exportDay(db.url, options, D)
    expect(again._tag).toBe("Failure")
    expect(await readCheckouts(lake)).toEqual(before) // the previous file, not the new one with k-written-later
    // once the disk is fixed, the next run has the new row
    fs.rmSync(summaryFile, { recursive: true })
    fs.writeFileSync(summaryFile, saved)
    expect((await exportDay(db.url, options, D))._tag).toBe("Success")
    expect((await readCheckouts(lake)).map((r) => r["checkout_id"])).toContain("k-written-later")
    await query(db.url, `DELETE FROM shop.checkout_attribution WHERE checkout_id = 'k-written-later'`)
  })

  it("one process at a time: the lock held on one connection pool refuses another until released", async () => {
    const options = { lakeDir: path.join(tmp, "lake-lock"), timeZone: "UTC" }
    const result = await Effect.runPromise(Effect.gen(function*() {
      const a = yield* MidnightExport.make(options).pipe(Effect.provide(yield* Layer.build(Database.clientLayer(db.url, 2))))
      const b = yield* MidnightExport.make(options).pipe(Effect.provide(yield* Layer.build(Database.clientLayer(db.url, 2))))
      const whileHeld = yield* a.withLock(b.withLock(Effect.succeed("b ran")))
      const afterwards = yield* b.withLock(Effect.succeed("b ran"))
      return { whileHeld, afterwards }
    }).pipe(Effect.scoped))
    expect(result).toEqual({ whileHeld: Option.some(Option.none()), afterwards: Option.some("b ran") })
  })

  it("a checkout written after its day's run (a late one) makes the day stale until it is exported again; one written before does not", async () => {
    const lake = path.join(tmp, "lake-stale")
    const options = { lakeDir: lake, timeZone: "UTC" }
    const day = "2026-11-20"
    const history = () => withExport(db.url, options, (m) => m.history)
    // the sink writes rows and marks their hours in one transaction (PgSink's statement)
    const writeAndMark = async (id: string, at: string) => {
      await insert(db.url, [checkout(id, at, 20)])
      await query(db.url, MARK_HOURS, [[`${at.slice(0, 13)}:00:00.000Z`], new Date().toISOString()])
    }
    await writeAndMark("k-stale-1", `${day}T08:15:00.000001Z`) // before any run
    expect((await exportDay(db.url, options, day))._tag).toBe("Success")
    expect((await history()).stale, "the run covers what was written before it").toEqual([])
    expect(await query(db.url, `SELECT hour FROM shop.export_pending WHERE hour >= $1::date AND hour < $1::date + 1`, [day]), "its marks are gone").toEqual([])
    await writeAndMark("k-stale-2", `${day}T23:59:59.999999Z`) // late: after the run
    expect((await history()).stale).toEqual([day])
    expect((await readCheckouts(lake, day)).map((r) => r["checkout_id"])).not.toContain("k-stale-2")
    expect((await exportDay(db.url, options, day))._tag).toBe("Success")
    expect((await readCheckouts(lake, day)).map((r) => r["checkout_id"])).toEqual(expect.arrayContaining(["k-stale-1", "k-stale-2"]))
    expect((await history()).stale, "exported again: not stale").toEqual([])
    // an hour in Asia/Kolkata (+05:30) touches two local days; a late checkout in it makes both stale once both were exported
    const kolkata = { lakeDir: path.join(tmp, "lake-stale-kolkata"), timeZone: "Asia/Kolkata" }
    for (const d of ["2026-11-21", "2026-11-22"]) expect((await exportDay(db.url, kolkata, d))._tag).toBe("Success")
    await writeAndMark("k-stale-3", "2026-11-21T18:40:00.000001Z") // 00:10 on the 22nd in Kolkata; its hour began on the 21st there
    expect(await withExport(db.url, kolkata, (m) => m.history).then((h) => h.stale)).toEqual(["2026-11-21", "2026-11-22"])
    await query(db.url, `DELETE FROM shop.checkout_attribution WHERE checkout_id LIKE 'k-stale-%'`)
    await query(db.url, `DELETE FROM shop.export_pending`)
  })

  it("a day is complete once every task's watermark has passed its end in EXPORT_TZ, or the task has released all it read", async () => {
    const source = "kafka:complete-test"
    const put = (topic: string, partition: number, watermark: string | null, maxEventTime: string | null) =>
      query(db.url, `INSERT INTO shop.source_positions (source, job, topic, "partition", next_offset, restart_offset, max_event_time, watermark, updated_at)
        VALUES ($1, 'attribution', $2, $3, 1, 0, $4, $5, now())
        ON CONFLICT (source, job, topic, "partition") DO UPDATE SET max_event_time = EXCLUDED.max_event_time, watermark = EXCLUDED.watermark`,
        [source, topic, partition, maxEventTime, watermark])
    const complete = (timeZone: string, day: string) =>
      withExport(db.url, { lakeDir: path.join(tmp, "unused"), timeZone, progress: { sourceName: source, job: "attribution" } }, (m) => m.complete(day))
    expect(await complete("UTC", D), "nothing read yet").toBe(true)
    // task 0 (both topics) holds events of 23:59:50 behind a watermark of 23:59:45; task 1 is past midnight
    await put("clicks", 0, `${D}T23:59:45Z`, `${D}T23:59:50Z`)
    await put("checkouts", 0, `${D}T23:59:45Z`, `${D}T23:59:30Z`)
    await put("clicks", 1, "2026-11-24T00:00:10Z", "2026-11-24T00:00:25Z")
    expect(await complete("UTC", D)).toBe(false)
    expect(await complete("UTC", "2026-11-22"), "an earlier day is").toBe(true)
    expect(await complete("Asia/Tokyo", D), "Tokyo's D ended at 15:00Z").toBe(true)
    // task 0 idle: its watermark is the largest event time it read, everything released
    await put("clicks", 0, `${D}T23:59:50Z`, `${D}T23:59:50Z`)
    await put("checkouts", 0, `${D}T23:59:50Z`, `${D}T23:59:30Z`)
    expect(await complete("UTC", D)).toBe(true)
    // a task that read events but has no watermark yet (a partition that never delivered holds it at −∞)
    await put("clicks", 2, null, `${D}T12:00:00Z`)
    expect(await complete("UTC", D)).toBe(false)
    await query(db.url, `DELETE FROM shop.source_positions WHERE source = $1`, [source])
  })
})

describe.skipIf(!pgOk)("the start's catch-up on PostgreSQL", () => {
  let db: { url: string; name: string }
  let tmp: string
  beforeAll(async () => {
    db = await createDatabase("insights_catchup")
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "catchup-"))
  })
  afterAll(async () => {
    if (db) await dropDatabase(db.name)
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  })

  it("two processes starting together export every day from the earliest checkout's through the last due, once each", async () => {
    const lake = path.join(tmp, "lake")
    const options = { lakeDir: lake, timeZone: "UTC" }
    // the real clock: the schedule reads it, so the days are counted back from today
    const through = lastDueDay(Date.now(), "UTC")
    const first = addDays(through, -3)
    await withExport(db.url, options, () => Effect.void) // migrations
    await insert(db.url, [
      checkout("a1", `${first}T10:00:00.000000Z`, 1), checkout("a2", `${first}T23:59:59.999999Z`, 2),
      checkout("b1", `${addDays(first, 2)}T00:00:00.000000Z`, 4)
    ])
    // a crash's leftovers in the lake, removed by the start
    fs.mkdirSync(path.join(lake, "exports/.staging/run-0-dt=2000-01-01/checkouts"), { recursive: true })

    const statuses = [ExportSchedule.JOB_NAME, ExportSchedule.JOB_NAME].map((name) => ({ name, lastRunAt: undefined, lastResult: undefined, nextRunAt: undefined }))
    const outcomes = await Effect.runPromise(Effect.gen(function*() {
      const processes = []
      for (const status of statuses) {
        const m = yield* MidnightExport.make(options).pipe(Effect.provide(yield* Layer.build(Database.clientLayer(db.url, 3))))
        processes.push({ m, status })
      }
      return yield* Effect.forEach(processes, ({ m, status }) => ExportSchedule.catchUp(m, { timeZone: "UTC" }, status), { concurrency: "unbounded" })
    }).pipe(Effect.scoped))

    const days = [first, addDays(first, 1), addDays(first, 2), addDays(first, 3)]
    expect(outcomes.flatMap((o) => o.succeeded).sort()).toEqual(days)
    expect(outcomes.flatMap((o) => o.failed)).toEqual([])
    const recorded = await runs(db.url)
    expect(recorded.map((r) => [r.day, r.status, r.rows])).toEqual([
      [days[0], "succeeded", "2"], [days[1], "succeeded", "0"], [days[2], "succeeded", "1"], [days[3], "succeeded", "0"]
    ])
    expect(files(path.join(lake, "exports/checkouts"))).toEqual(days.map((d) => `dt=${d}/part-0.parquet`))
    expect(fs.readdirSync(path.join(lake, "exports/.staging"))).toEqual([])
    expect((await readCheckouts(lake)).map((r) => r["checkout_id"])).toEqual(["a1", "a2", "b1"])

    // a second start finds nothing to do
    const again = await withExport(db.url, options, (m) => ExportSchedule.catchUp(m, { timeZone: "UTC" }, statuses[0]!))
    expect(again).toEqual({ ran: true, succeeded: [], failed: [] })
    expect((await runs(db.url)).length).toBe(4)
  })
})
