/**
 * `scripts/soak` end to end: a 40-second soak sampled every 5 s leaves a CSV with the
 * expected columns and growing events, an SVG, a PNG of a sensible size, and a one-line JSON
 * summary; a soak stopped by SIGTERM stops the daemon cleanly (exit 0) and still writes what
 * it sampled. Both drop their scratch database.
 *
 * Without PostgreSQL or chromium the file is skipped on a laptop and fails under `CI=true`.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { isCI, postgresAvailable, query, adminUrl } from "../support/TestDatabase.ts"

const root = path.resolve(import.meta.dirname, "../..")
const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"
const postgres = await postgresAvailable() // throws under CI when the server is missing
const chromiumPresent = fs.existsSync(CHROMIUM)
const runs = postgres && (chromiumPresent || isCI)

const COLUMNS = [
  "elapsed_s", "at", "rss_mb", "heap_used_mb", "heap_total_mb", "events_total", "events_per_s",
  "clicks_held", "pending_checkouts", "state_users", "users_with_recs"
]

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs scripts/soak; `signalAfterMs`: SIGTERM it once that long has passed after the daemon is ready. */
const soak = (args: ReadonlyArray<string>, signalAfterMs?: number): Promise<Run> =>
  new Promise((resolve, reject) => {
    const { KAFKA_BROKERS: _k, ...env } = process.env
    const child = spawn(path.join(root, "scripts/soak"), args, { cwd: root, env: { ...env, DATABASE_URL: adminUrl }, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => { stdout += d.toString() })
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString()
      if (signalAfterMs !== undefined && /daemon ready/.test(stderr)) {
        setTimeout(() => child.kill("SIGTERM"), signalAfterMs)
        signalAfterMs = undefined
      }
    })
    const timer = setTimeout(() => child.kill("SIGKILL"), 170_000)
    child.once("error", reject)
    child.once("exit", (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })

const readCsv = (file: string) => {
  const [header, ...lines] = fs.readFileSync(file, "utf8").trim().split("\n")
  return { header: header!.split(","), rows: lines.map((l) => Object.fromEntries(l.split(",").map((v, i) => [COLUMNS[i]!, v]))) }
}

const assertPng = (file: string) => {
  assert.isTrue(fs.existsSync(file), `no ${file}`)
  const bytes = fs.readFileSync(file)
  assert.deepStrictEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "PNG signature")
  assert.isAbove(bytes.length, 20_000, "a chart, not a blank page")
  assert.isBelow(bytes.length, 2_000_000)
  // IHDR: width and height
  assert.deepStrictEqual([bytes.readUInt32BE(16), bytes.readUInt32BE(20)], [1200, 820])
}

const summaryOf = (run: Run) => {
  const line = run.stdout.trim().split("\n").pop() ?? ""
  return JSON.parse(line) as Record<string, unknown> & {
    readonly samples: number
    readonly events: number
    readonly database: string
    readonly interrupted: boolean
    readonly daemonExit: { readonly code: number | null } | null
    readonly rssMb: Record<string, number | null>
    readonly heapMb: Record<string, number | null>
    readonly flat: { readonly verdict: string; readonly thresholdMbPerHour: number; readonly rss: string; readonly heap: string }
  }
}

const databaseGone = async (name: string) =>
  assert.lengthOf(await query(adminUrl, "SELECT 1 FROM pg_database WHERE datname = $1", [name]), 0, `${name} was not dropped`)

describe.skipIf(!runs)("scripts/soak", () => {
  it("samples for 40 s every 5 s: CSV, SVG, PNG and a JSON summary", { timeout: 180_000 }, async () => {
    if (!chromiumPresent) throw new Error(`chromium is required under CI=true but ${CHROMIUM} does not exist (apt-get install chromium)`)
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "soak-test-"))
    const run = await soak(["--minutes", String(40 / 60), "--every-seconds", "5", "--rate", "500", "--out", out])
    assert.strictEqual(run.code, 0, `scripts/soak exited ${run.code}\n${run.stderr}`)

    const csv = readCsv(path.join(out, "soak.csv"))
    assert.deepStrictEqual(csv.header, COLUMNS)
    assert.isAtLeast(csv.rows.length, 6)
    const events = csv.rows.map((r) => Number(r["events_total"]))
    for (let i = 1; i < events.length; i++) assert.isAbove(events[i]!, events[i - 1]!, `events grow: ${events.join(", ")}`)
    for (const r of csv.rows) {
      assert.isAbove(Number(r["rss_mb"]), 10)
      assert.isAbove(Number(r["heap_used_mb"]), 1)
    }
    assert.strictEqual(csv.rows[0]!["events_per_s"], "")
    assert.isAbove(Number(csv.rows[csv.rows.length - 1]!["events_per_s"]), 100)

    assert.match(fs.readFileSync(path.join(out, "soak.svg"), "utf8"), /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/)
    assertPng(path.join(out, "soak.png"))

    const summary = summaryOf(run)
    for (const key of ["samples", "minutes", "events", "eventsPerSecond", "rssMb", "heapMb", "flat"]) assert.property(summary, key)
    for (const key of ["first", "last", "max", "slopeMbPerHour"]) {
      assert.isNumber(summary.rssMb[key], `rssMb.${key}`)
      assert.isNumber(summary.heapMb[key], `heapMb.${key}`)
    }
    assert.include(["flat", "growing", "falling", "inconclusive"], summary.flat.verdict)
    assert.property(summary.heapMb, "floor") // the line through the heap's troughs (null with fewer than three)
    assert.isNumber(summary.flat.thresholdMbPerHour)
    assert.strictEqual(summary.samples, csv.rows.length)
    assert.strictEqual(summary.events, events[events.length - 1])
    assert.isFalse(summary.interrupted)
    assert.strictEqual(summary.daemonExit?.code, 0)
    assert.deepStrictEqual(JSON.parse(fs.readFileSync(path.join(out, "summary.json"), "utf8")), summary)
    await databaseGone(summary.database)
  })

  it("SIGTERM stops the daemon cleanly and keeps what was sampled", { timeout: 120_000 }, async () => {
    if (!chromiumPresent) throw new Error(`chromium is required under CI=true but ${CHROMIUM} does not exist (apt-get install chromium)`)
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "soak-test-"))
    const run = await soak(["--minutes", "10", "--every-seconds", "2", "--rate", "300", "--out", out], 9_000)
    assert.strictEqual(run.code, 0, `scripts/soak exited ${run.code}\n${run.stderr}`)
    assert.match(run.stderr, /SIGTERM: stopping the daemon/)
    const summary = summaryOf(run)
    assert.isTrue(summary.interrupted)
    assert.strictEqual(summary.daemonExit?.code, 0, "the daemon exits 0 after SIGTERM")
    assert.isAtLeast(summary.samples, 3)
    assert.strictEqual(readCsv(path.join(out, "soak.csv")).rows.length, summary.samples)
    assertPng(path.join(out, "soak.png"))
    await databaseGone(summary.database)
  })
})
