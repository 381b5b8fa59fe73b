/**
 * Fills a migrated database with two hours of the engine's real output for the dashboard
 * test: generated data replayed by the CLI (paid and failed checkouts, several sources,
 * unattributed ones, late events, bad messages), plus engine-status samples every 5 s.
 *
 * Deterministic (seeded) and relative to `fillNow`, so nothing depends on the wall clock;
 * the test derives its time range from the rows (min/max checkout_timestamp).
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import { query } from "../support/TestDatabase.ts"

const run = promisify(execFile)

export const fillNow = new Date("2025-06-01T12:00:00.000Z")

/** mulberry32: a small seeded PRNG. */
const prng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}



const insertJson = async (url: string, table: string, columns: string, rows: ReadonlyArray<object>) => {
  const names = columns.split(",").map((column) => column.trim().split(/\s+/)[0]).join(", ")
  for (let i = 0; i < rows.length; i += 2_000) {
    const chunk = rows.slice(i, i + 2_000)
    await query(url, `INSERT INTO ${table} (${names}) SELECT ${names} FROM jsonb_to_recordset($1::jsonb) AS t(${columns})`, [
      JSON.stringify(chunk)
    ])
  }
}

export interface FillSummary {
  readonly checkouts: number
  readonly from: Date
  readonly to: Date
}

/**
 * The engine's real output: a generated backlog (two hours of the synthetic store), salted
 * with bad lines, a late click and a late checkout, run through `insights replay` (the built
 * CLI) into `url`.
 */
export const fillShop = async (url: string, seed = 42): Promise<FillSummary> => {
  const random = prng(seed)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "grafana-fill-"))
  const cli = path.resolve("dist/cli.js")
  const start = fillNow.getTime() - 2 * 3_600_000
  await run(process.execPath, [cli, "generate", "--to", "files", dir, "--count", "14400", "--rate", "2",
    "--seed", String(seed), "--start", new Date(start).toISOString()])
  const clicks = fs.readFileSync(path.join(dir, "clicks.txt"), "utf-8").trimEnd().split("\n")
  const checkouts = fs.readFileSync(path.join(dir, "checkouts.txt"), "utf-8").trimEnd().split("\n")
  const lastTime = (lines: Array<string>) => Date.parse(JSON.parse(lines[lines.length - 1]!.split("\t")[1]!)[lines === clicks ? "click_timestamp" : "checkout_timestamp"])
  const late = new Date(Math.max(lastTime(clicks), lastTime(checkouts)) - 3_600_000).toISOString()
  const sample = JSON.parse(checkouts[0]!.split("\t")[1]!)
  clicks.splice(100, 0, "not json", "")
  clicks.push(JSON.stringify({ click_id: "late-click", user_id: sample.user_id, source: "Google", click_timestamp: late }))
  checkouts.splice(50, 0, JSON.stringify({ ...sample, checkout_id: "bad-quantity", quantity: 0 }))
  checkouts.push(JSON.stringify({ ...sample, checkout_id: "late-checkout", checkout_timestamp: late }))
  fs.writeFileSync(path.join(dir, "clicks.txt"), clicks.join("\n") + "\n")
  fs.writeFileSync(path.join(dir, "checkouts.txt"), checkouts.join("\n") + "\n")
  await run(process.execPath, [cli, "replay", "--clicks", path.join(dir, "clicks.txt"), "--checkouts", path.join(dir, "checkouts.txt"),
    "--users", path.join(dir, "Users.csv"), "--products", path.join(dir, "Products.csv")], { env: { ...process.env, DATABASE_URL: url } })
  fs.rmSync(dir, { recursive: true, force: true })
  const [bounds] = await query<{ n: string; from: string; to: string }>(url,
    "SELECT count(*)::text AS n, min(checkout_timestamp)::text AS from, max(checkout_timestamp)::text AS to FROM shop.checkout_attribution")
  const now = Date.parse(bounds!.to)

  // engine_status is sampled by the daemon in processing time, which a replay does not have:
  // synthetic samples over the replayed hours keep the engine-health panels' SQL exercised.
  // Engine status every 5 s.
  const status: Array<Record<string, unknown>> = []
  let events = 0
  for (let t = start; t <= now; t += 5_000) {
    const rate = 150 + random() * 100
    events += Math.round(rate * 5)
    const delay = 15 + random() * 3 + (t > start + 3_600_000 && t < start + 3_900_000 ? 40 : 0)
    status.push({
      sampled_at: new Date(t).toISOString(),
      watermark: new Date(t - delay * 1000).toISOString(),
      watermark_delay_seconds: delay,
      events_per_second: rate,
      consumer_lag: Math.floor(random() * 500),
      events_total: events,
      late_events_total: Math.floor(events / 2_000),
      ingest_errors_total: Math.floor(events / 5_000),
      rows_written_total: Math.floor(events / 20),
      users_held: 200 + Math.floor(random() * 100),
      clicks_held: 5_000 + Math.floor(random() * 2_000),
      pending_checkouts: Math.floor(random() * 60)
    })
  }
  await insertJson(
    url,
    "shop.engine_status",
    "sampled_at timestamptz, watermark timestamptz, watermark_delay_seconds double precision, events_per_second double precision, "
      + "consumer_lag bigint, events_total bigint, late_events_total bigint, ingest_errors_total bigint, rows_written_total bigint, "
      + "users_held bigint, clicks_held bigint, pending_checkouts bigint",
    status
  )

  return { checkouts: Number(bounds!.n), from: new Date(bounds!.from), to: new Date(bounds!.to) }
}
