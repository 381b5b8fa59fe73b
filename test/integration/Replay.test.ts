/**
 * `insights replay` end to end on a real PostgreSQL: a generated backlog salted with bad
 * lines, duplicates, late events and unknown users/products gives exactly the rows an
 * independent oracle computes; replaying the same files again changes nothing.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import { DuckDBInstance } from "@duckdb/node-api"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { firstClickOracle } from "../support/ReplayOracle.ts"
import { createDatabase, dropDatabase, postgresAvailable, query } from "../support/TestDatabase.ts"

const run = promisify(execFile)
const available = await postgresAvailable()
const node = process.execPath
const cli = path.resolve("dist/cli.js")
const A = 3_600_000

interface Click { click_id: string; user_id: string; product_id?: string | null; source: string; click_timestamp: string }
interface Checkout { checkout_id: string; user_id: string; product_id: string; checkout_timestamp: string }


describe.skipIf(!available)("replay into PostgreSQL", () => {
  let db: { url: string; name: string }
  let dir: string
  const files = { clicks: "", checkouts: "" }
  let clicks: Array<Click> = []
  let checkouts: Array<Checkout> = []
  const badClickLines: Array<string> = []
  const badCheckoutLines: Array<string> = []
  const lateClickIds = new Set<string>()
  const lateCheckoutIds = new Set<string>()

  const replay = () =>
    run(node, [cli, "replay", "--clicks", files.clicks, "--checkouts", files.checkouts, "--users", path.join(dir, "Users.csv"), "--products", path.join(dir, "Products.csv")],
      { env: { ...process.env, DATABASE_URL: db.url, LAKE_DIR: path.join(dir, "lake") } })
  /** the salted files' lines, as replayed */
  let clickOut: Array<string> = []
  let checkoutOut: Array<string> = []

  beforeAll(async () => {
    db = await createDatabase()
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "replay-"))
    await run(node, [cli, "generate", "--to", "files", dir, "--count", "20000", "--seed", "42", "--rate", "20", "--start", "2026-11-02T08:00:00Z"])
    const read = (f: string) => fs.readFileSync(path.join(dir, f), "utf-8").trimEnd().split("\n")
    const clickLines = read("clicks.txt"), checkoutLines = read("checkouts.txt")
    const value = (line: string) => line.slice(line.indexOf("\t") + 1)
    clicks = clickLines.map((l) => JSON.parse(value(l)))
    checkouts = checkoutLines.map((l) => JSON.parse(value(l)))
    const end = Date.parse(clicks[clicks.length - 1]!.click_timestamp)

    // late events: hours behind the stream, at the end of each file
    const lateClick: Click = { click_id: "late-click-1", user_id: clicks[0]!.user_id, product_id: null, source: "Google", click_timestamp: new Date(end - 3 * A).toISOString() }
    const lateCheckout = { ...checkouts[5]!, checkout_id: "late-checkout-1", checkout_timestamp: new Date(end - 3 * A).toISOString() }
    lateClickIds.add(lateClick.click_id)
    lateCheckoutIds.add(lateCheckout.checkout_id)
    // unknown user and unknown product; the Flink generator's shape (no key, integer ids, naive time)
    const unknownUser = { ...checkouts[10]!, checkout_id: "unknown-user", user_id: "no-such-user" }
    const unknownProduct = { ...checkouts[11]!, checkout_id: "unknown-product", product_id: "no-such-product" }
    const flinkClick = { click_id: 99_000_001, user_id: Number(checkouts[12]!.user_id), source: "Youtube", user_agent: "ua", ip_address: "1.1.1.1",
      click_timestamp: new Date(Date.parse(checkouts[12]!.checkout_timestamp) - 1).toISOString().replace("T", " ").replace("Z", "") }
    clicks.push(lateClick, { ...flinkClick, click_id: String(flinkClick.click_id), user_id: String(flinkClick.user_id) } as Click)
    checkouts.push(lateCheckout, unknownUser, unknownProduct)

    badClickLines.push("not json", "", "[]", `{"click_id":"x","user_id":"u","source":"s","click_timestamp":"not a time"}`, `{"click_id":"y","source":"s","click_timestamp":"2026-11-02 08:00:00"}`)
    badCheckoutLines.push(JSON.stringify({ ...checkouts[1]!, checkout_id: "bad-q", quantity: 0 }), JSON.stringify({ ...checkouts[1]!, checkout_id: "bad-d", discount: 1 }), "{", "42")

    // duplicates: right after the original and ~100 lines later
    const withDuplicates = (lines: Array<string>) => lines.flatMap((l, i) => i % 97 === 0 ? [l, l] : i % 101 === 0 && i > 100 ? [l, lines[i - 100]!] : [l])
    clickOut = withDuplicates(clickLines)
    checkoutOut = withDuplicates(checkoutLines)
    // bad lines and the Flink-shaped click spread through the middle, late events at the end
    // the Flink-shaped click goes where its time belongs in the clicks file (no key at all)
    const at = clickOut.findIndex((l) => Date.parse(JSON.parse(value(l)).click_timestamp) > Date.parse(checkouts[12]!.checkout_timestamp) - 1_000)
    clickOut.splice(at, 0, JSON.stringify(flinkClick))
    clickOut.splice(4000, 0, ...badClickLines.slice(3))
    clickOut.splice(500, 0, ...badClickLines.slice(0, 3))
    checkoutOut.splice(300, 0, ...badCheckoutLines)
    checkoutOut.splice(14, 0, JSON.stringify(unknownUser), `someone-else\t${JSON.stringify(unknownProduct)}`)
    clickOut.push(JSON.stringify(lateClick))
    checkoutOut.push(JSON.stringify(lateCheckout))
    files.clicks = path.join(dir, "clicks-salted.txt")
    files.checkouts = path.join(dir, "checkouts-salted.txt")
    fs.writeFileSync(files.clicks, clickOut.join("\n") + "\n")
    fs.writeFileSync(files.checkouts, checkoutOut.join("\r\n") + "\r\n") // CRLF too
    await replay()
  }, 120_000)

  afterAll(async () => {
    if (db) await dropDatabase(db.name)
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  it("writes one row per checkout with the oracle's attribution", async () => {
    const rows = await query<{ checkout_id: string; click_id: string | null; is_late: boolean }>(db.url,
      "SELECT checkout_id, click_id, is_late FROM shop.checkout_attribution")
    const expected = firstClickOracle(clicks, checkouts, lateClickIds)
    expect(rows.length).toBe(checkouts.length)
    const actual = new Map(rows.map((r) => [r.checkout_id, r.click_id]))
    let mismatches = 0
    for (const [id, click] of expected) if (actual.get(id) !== click) mismatches++
    expect(mismatches).toBe(0)
    expect(actual.get("late-checkout-1")).toBeNull() // its clicks were dropped hours ago
    expect([...expected.values()].filter((c) => c !== null).length).toBeGreaterThan(checkouts.length * 0.9)
    expect(rows.filter((r) => r.is_late).map((r) => r.checkout_id)).toEqual(["late-checkout-1"])
  })

  it("routes late events to late_events, and a late checkout also to checkout_attribution", async () => {
    const late = await query<{ topic: string; event_id: string }>(db.url, "SELECT topic, event_id FROM shop.late_events ORDER BY 1, 2")
    expect(late).toEqual([{ topic: "checkouts", event_id: "late-checkout-1" }, { topic: "clicks", event_id: "late-click-1" }])
  })

  it("writes every bad line to ingest_errors once, with where it was and why", async () => {
    const errors = await query<{ source: string; offset: string; payload: string; error: string }>(db.url,
      `SELECT source, "offset"::text, payload, error FROM shop.ingest_errors ORDER BY source, "offset"`)
    expect(errors.filter((e) => e.source === "clicks").map((e) => e.payload).sort()).toEqual([...badClickLines].sort())
    expect(errors.filter((e) => e.source === "checkouts").map((e) => e.payload).sort()).toEqual([...badCheckoutLines].sort())
    for (const e of errors) expect(e.error.length).toBeGreaterThan(5)
  })

  it("enriches with the dimensions, NULL for the unknown, and computes money as SPEC §4 says", async () => {
    const unknown = await query<{ checkout_id: string; gender: string | null; category: string | null; total_amount: string | null }>(db.url,
      "SELECT checkout_id, gender, category, total_amount FROM shop.checkout_attribution WHERE checkout_id IN ('unknown-user', 'unknown-product') ORDER BY 1")
    expect(unknown[0]).toMatchObject({ checkout_id: "unknown-product", category: null, total_amount: null })
    expect(unknown[0]!.gender).not.toBeNull()
    expect(unknown[1]).toMatchObject({ checkout_id: "unknown-user", gender: null })
    expect(unknown[1]!.category).not.toBeNull()
    // money recomputed by PostgreSQL's numeric arithmetic, independently of the engine
    const [check] = await query<{ rows: string; wrong_total: string; wrong_profit: string; missing: string }>(db.url, `
      SELECT count(*)::text AS rows,
             count(*) FILTER (WHERE a.total_amount IS DISTINCT FROM round(p.price * a.quantity * (1 - a.discount), 2))::text AS wrong_total,
             count(*) FILTER (WHERE a.profit IS DISTINCT FROM round((round(p.price * a.quantity * (1 - a.discount), 2) - a.shipping_cost) * p.commission_rate, 2))::text AS wrong_profit,
             count(*) FILTER (WHERE u.gender IS DISTINCT FROM a.gender OR p.category IS DISTINCT FROM a.category)::text AS missing
      FROM shop.checkout_attribution a JOIN shop.products p USING (product_id) JOIN shop.users u USING (user_id)`)
    expect(Number(check!.rows)).toBe(checkouts.length - 2)
    expect(check).toMatchObject({ wrong_total: "0", wrong_profit: "0", missing: "0" })
  })

  it("replaying the same files again changes nothing", async () => {
    const snapshot = () => Promise.all([
      query(db.url, "SELECT * FROM shop.checkout_attribution ORDER BY checkout_id"),
      query(db.url, "SELECT * FROM shop.late_events ORDER BY topic, event_id"),
      query(db.url, `SELECT * FROM shop.ingest_errors ORDER BY source, "partition", "offset"`)
    ])
    const before = await snapshot()
    await replay()
    const after = await snapshot()
    expect(after).toEqual(before)
  }, 120_000)

  it("lands every valid message in the lake exactly once, typed, under its event time's hour (DuckDB reads it as it is)", async () => {
    const lake = path.join(dir, "lake", "raw")
    const duck = await (await DuckDBInstance.create(":memory:")).connect()
    await duck.run("SET TimeZone = 'UTC'")
    const one = async (q: string) => (await duck.runAndReadAll(q)).getRowObjectsJson()[0] as Record<string, string | number | null>
    const glob = (topic: string) => `read_parquet('${lake}/${topic}/**/*.parquet', hive_partitioning = true)`
    const validClicks = clickOut.length - badClickLines.length
    const validCheckouts = checkoutOut.length - badCheckoutLines.length
    const c = await one(`SELECT count(*) AS n, count(DISTINCT "offset") AS offsets,
      count(*) FILTER (WHERE strftime(click_timestamp, '%Y-%m-%d') <> CAST(dt AS VARCHAR) OR hour(click_timestamp) <> hour) AS misfiled,
      max(CASE WHEN click_id = '99000001' THEN user_id END) AS flink_user, count(*) FILTER (WHERE click_id = 'late-click-1') AS late
      FROM ${glob("clicks")}`)
    expect(c).toEqual({ n: String(validClicks), offsets: String(validClicks), misfiled: "0", flink_user: String(checkouts[12]!.user_id), late: "1" })
    const k = await one(`SELECT count(*) AS n, count(DISTINCT "offset") AS offsets, sum(quantity) AS units, typeof(any_value(shipping_cost)) AS money,
      typeof(any_value(checkout_timestamp)) AS time FROM ${glob("checkouts")}`)
    const validCheckoutValues = checkoutOut.filter((l) => !badCheckoutLines.includes(l)).map((l) => JSON.parse(l.slice(l.indexOf("\t") + 1).trimEnd()) as { quantity: number })
    expect(k).toEqual({ n: String(validCheckouts), offsets: String(validCheckouts), units: String(validCheckoutValues.reduce((a, v) => a + v.quantity, 0)), money: "DECIMAL(12,2)", time: "TIMESTAMP WITH TIME ZONE" })
    duck.closeSync()
  })

  it("rolls every hour it touched before it exits: each dimension's values sum to the hour's checkouts", async () => {
    expect(await query(db.url, "SELECT hour FROM shop.rollup_pending")).toEqual([])
    const mismatches = await query(db.url, `
      WITH truth AS (
        SELECT date_trunc('hour', checkout_timestamp AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour, count(*)::int AS n,
               coalesce(sum(total_amount) FILTER (WHERE payment_status = 'Success'), 0) AS revenue
        FROM shop.checkout_attribution GROUP BY 1)
      SELECT t.hour, d.dimension, t.n, r.n AS rolled, t.revenue, r.revenue AS rolled_revenue
      FROM truth t CROSS JOIN (VALUES ('source'), ('category'), ('gender'), ('payment')) AS d(dimension)
      LEFT JOIN (SELECT hour, dimension, sum(checkouts)::int AS n, sum(revenue) AS revenue FROM shop.hourly_rollup GROUP BY 1, 2) r
        ON r.hour = t.hour AND r.dimension = d.dimension
      WHERE r.n IS DISTINCT FROM t.n OR r.revenue IS DISTINCT FROM t.revenue`)
    expect(mismatches).toEqual([])
    const [hours] = await query<{ n: number }>(db.url, "SELECT count(DISTINCT hour)::int AS n FROM shop.hourly_rollup")
    expect(hours!.n).toBeGreaterThanOrEqual(2) // ~17 minutes of event time across an hour boundary, and the late checkout
  })
})
