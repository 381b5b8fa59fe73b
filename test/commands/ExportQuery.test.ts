/**
 * `node dist/cli.js export --date D` and `query "SQL"` as child processes (built from the
 * current sources): the export writes the day and records its run, prints one line; a disk
 * that refuses is one line and exit 1. `query` shows the lake's four views as an aligned
 * table, `--json` lines or `--csv` with a header, an empty view for a table with no files,
 * needs no database; bad SQL and a missing lake are one line and exit 2.
 */
import { DuckDBInstance } from "@duckdb/node-api"
import { parse } from "csv-parse/sync"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildOnce } from "../http/Daemon.ts"
import { checkout, insert, migrate } from "../support/Checkouts.ts"
import { createDatabase, dropDatabase, postgresAvailable, query } from "../support/TestDatabase.ts"

const pgOk = await postgresAvailable()
const root = path.resolve(import.meta.dirname, "../..")
const node = path.join(root, "node_modules/.bin/node")

interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const cli = (args: ReadonlyArray<string>, env: Record<string, string>): Promise<Ran> => {
  const { KAFKA_BROKERS: _k, DATABASE_URL: _d, LAKE_DIR: _l, EXPORT_TZ: _t, ...inherited } = process.env
  return new Promise((resolve) => {
    execFile(node, [path.join(root, "dist/cli.js"), ...args], { cwd: root, timeout: 60_000, env: { ...inherited, ...env } },
      (error, stdout, stderr) => resolve({ code: error ? (error as { code?: number }).code ?? null : 0, stdout, stderr }))
  })
}

const D = "2026-11-23"
const EMPTY = "2026-11-22"

describe.skipIf(!pgOk)("insights export and insights query", () => {
  let db: { url: string; name: string }
  let tmp: string
  let lake: string
  const rows = [
    checkout("k1", `${D}T08:00:00.000001Z`, 1),
    checkout("k2", `${D}T09:30:00.250000Z`, 2),
    checkout("k3", `${D}T23:59:59.999999Z`, 3), // Failed: not in revenue
    checkout("k4", `${D}T12:00:00.000000Z`, 4),
    checkout("k-next-day", "2026-11-24T00:00:00.000000Z", 7)
  ]
  const paid = rows.slice(0, 4).filter((r) => r.payment_status === "Success")

  beforeAll(async () => {
    buildOnce()
    db = await createDatabase("insights_cli_export")
    await migrate(db.url)
    await insert(db.url, rows)
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cli-export-"))
    lake = path.join(tmp, "lake")
    // raw events as the lake's writer lands them: a click file in one hour, the checkouts topic without files yet
    const rawHour = path.join(lake, "raw/clicks/dt=2026-11-23/hour=08")
    fs.mkdirSync(rawHour, { recursive: true })
    const instance = await DuckDBInstance.create(":memory:")
    const c = await instance.connect()
    await c.run(`COPY (SELECT * FROM (VALUES ('c1', 'u1', 'p1', 'Google', 'click', NULL, NULL, TIMESTAMPTZ '2026-11-23 08:00:01+00', 0, 41::BIGINT),
      ('c2', 'u2', NULL, 'Tiktok', 'view', 'ua', '10.0.0.1', TIMESTAMPTZ '2026-11-23 08:59:59+00', 1, 7::BIGINT))
      AS t(click_id, user_id, product_id, source, event_type, user_agent, ip_address, click_timestamp, "partition", "offset"))
      TO '${path.join(rawHour, "part-0-41.parquet")}' (FORMAT parquet)`)
    c.closeSync()
    instance.closeSync()
  })
  afterAll(async () => {
    if (db) await dropDatabase(db.name)
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  })

  it("export --date writes the day, records the run and prints one line", async () => {
    const r = await cli(["export", "--date", D], { DATABASE_URL: db.url, LAKE_DIR: lake })
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: "" })
    const revenue = (paid.reduce((a, x) => a + Math.round(Number(x.total_amount ?? 0) * 100), 0) / 100).toFixed(2)
    expect(r.stderr).toMatch(new RegExp(
      `^exported ${D} \\(UTC\\): 4 checkouts, ${paid.length} paid, \\d+ units, revenue ${revenue.replace(".", "\\.")}, profit \\d+\\.\\d\\d, attributed 50\\.0 % ` +
        `-> .*exports/checkouts/dt=${D}/part-0\\.parquet, .*exports/daily_summary/dt=${D}/part-0\\.parquet \\(run \\d+, \\d+\\.\\d s\\)\\n$`
    ))
    const runs = await query<{ status: string; rows: string }>(db.url, `SELECT status, "rows"::text AS rows FROM shop.export_runs WHERE day = $1::date`, [D])
    expect(runs).toEqual([{ status: "succeeded", rows: "4" }])
    const empty = await cli(["export", "--date", EMPTY], { DATABASE_URL: db.url, LAKE_DIR: lake })
    expect(empty.code).toBe(0)
    expect(empty.stderr).toMatch(new RegExp(`^exported ${EMPTY} \\(UTC\\): 0 checkouts, 0 paid, 0 units, revenue 0\\.00, profit 0\\.00, attributed – `))
  })

  it("export to a lake it cannot write: one line, exit 1, the run recorded failed", async () => {
    const file = path.join(tmp, "a-file")
    fs.writeFileSync(file, "")
    const r = await cli(["export", "--date", "2026-11-20"], { DATABASE_URL: db.url, LAKE_DIR: file })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^insights: export of 2026-11-20 failed: cannot create the staging folder: ENOTDIR[^\n]*\n$/)
    const runs = await query<{ status: string }>(db.url, `SELECT status FROM shop.export_runs WHERE day = '2026-11-20'`)
    expect(runs).toEqual([{ status: "failed" }])
  })

  it("export usage errors: one line, exit 2", async () => {
    expect(await cli(["export"], {})).toMatchObject({ code: 2, stderr: "insights: export needs --date YYYY-MM-DD\n" })
    expect(await cli(["export", "--date", "23/11/2026"], {})).toMatchObject({ code: 2, stderr: "insights: --date must be a day written YYYY-MM-DD, got 23/11/2026\n" })
    expect(await cli(["export", "--date", D], { EXPORT_TZ: "Moon/Base" })).toMatchObject({
      code: 2, stderr: `insights: EXPORT_TZ must be a time zone name such as UTC, Europe/Paris or Asia/Tokyo (got "Moon/Base")\n`
    })
  })

  // query never touches PostgreSQL: DATABASE_URL points at nothing
  const noDb = () => ({ LAKE_DIR: lake, DATABASE_URL: "postgres://postgres@127.0.0.1:1/none" })

  it("query: an aligned table by default", async () => {
    const r = await cli(["query", "SELECT dt, count(*) AS checkouts, sum(total_amount) FILTER (WHERE payment_status = 'Success') AS revenue FROM exports.checkouts GROUP BY dt ORDER BY dt"], noDb())
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" })
    const revenue = (paid.reduce((a, x) => a + Math.round(Number(x.total_amount ?? 0) * 100), 0) / 100).toFixed(2)
    const w = Math.max("revenue".length, revenue.length)
    expect(r.stdout).toBe([
      `${"dt".padEnd(10)} │ checkouts │ ${"revenue".padStart(w)}`,
      `${"─".repeat(10)}─┼─${"─".repeat(9)}─┼─${"─".repeat(w)}`,
      `${D} │ ${"4".padStart(9)} │ ${revenue.padStart(w)}`,
      "(1 row)",
      ""
    ].join("\n"))
  })

  it("query --json: one object per row, exact numbers; --csv: a header and quoted values", async () => {
    const sql = "SELECT checkout_id, quantity, total_amount, shipping_address, checkout_timestamp, is_late FROM exports.checkouts ORDER BY checkout_id"
    const json = await cli(["query", sql, "--json"], noDb())
    expect(json.code).toBe(0)
    const lines = json.stdout.trimEnd().split("\n")
    expect(lines.length).toBe(4)
    expect(lines.map((l) => JSON.parse(l))).toEqual(rows.slice(0, 4).sort((a, b) => a.checkout_id < b.checkout_id ? -1 : 1).map((x) => ({
      checkout_id: x.checkout_id, quantity: x.quantity, total_amount: x.total_amount === null ? null : Number(x.total_amount),
      shipping_address: x.shipping_address, checkout_timestamp: expect.stringMatching(/^2026-11-23 \d\d:\d\d:\d\d(\.\d+)?\+00$/), is_late: x.is_late
    })))
    // decimals are written as they are, never through a double: "1137.00" stays 1137.00
    for (const [i, x] of rows.slice(0, 4).entries()) if (x.total_amount !== null) expect(lines[i]).toContain(`"total_amount":${x.total_amount}`)

    const csv = await cli(["query", sql, "--csv"], noDb())
    expect(csv.code).toBe(0)
    const records = parse(csv.stdout) as Array<Array<string>>
    expect(records[0]).toEqual(["checkout_id", "quantity", "total_amount", "shipping_address", "checkout_timestamp", "is_late"])
    expect(records.slice(1).map((r) => [r[0], r[3]])).toEqual(
      rows.slice(0, 4).sort((a, b) => a.checkout_id < b.checkout_id ? -1 : 1).map((x) => [x.checkout_id, x.shipping_address ?? ""])
    )
  })

  it("query: the raw views with dt and hour from the path; a topic without files is an empty view with its columns", async () => {
    const r = await cli(["query", "SELECT dt, hour, count(*) AS clicks, min(\"offset\") AS first FROM raw.clicks GROUP BY ALL", "--json"], noDb())
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" })
    expect(JSON.parse(r.stdout)).toEqual({ dt: "2026-11-23", hour: 8, clicks: 2, first: 7 })
    const empty = await cli(["query", "SELECT * FROM raw.checkouts", "--csv"], noDb())
    expect(empty).toMatchObject({ code: 0, stderr: "" })
    expect(empty.stdout).toBe("checkout_id,user_id,product_id,quantity,shipping_cost,discount,payment_method,payment_status,payment_description," +
      "shipping_address,checkout_timestamp,partition,offset,dt,hour\n")
    const table = await cli(["query", "SELECT count(*) AS n FROM raw.checkouts"], noDb())
    expect(table.stdout).toBe("n\n─\n0\n(1 row)\n")
  })

  it("query: bad SQL, an unknown table and a missing lake are one line, exit 2", async () => {
    expect(await cli(["query", "SELEC 1"], noDb())).toEqual({ code: 2, stdout: "", stderr: `insights: query: Parser Error: syntax error at or near "SELEC"\n` })
    const unknown = await cli(["query", "SELECT * FROM exports.nothing"], noDb())
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/^insights: query: Catalog Error: Table with name nothing does not exist![^\n]*\n$/)
    const missing = path.join(tmp, "no-lake")
    expect(await cli(["query", "SELECT 1"], { LAKE_DIR: missing })).toEqual({
      code: 2, stdout: "", stderr: `insights: no lake at ${missing} (LAKE_DIR): nothing has been written to it yet, or LAKE_DIR points elsewhere\n`
    })
    expect(await cli(["query"], {})).toMatchObject({ code: 2, stderr: `insights: query needs the SQL to run: insights query "SELECT …"\n` })
    expect(await cli(["query", "SELECT 1", "--json", "--csv"], {})).toMatchObject({ code: 2, stderr: "insights: query: --json and --csv exclude each other\n" })
  })
})
