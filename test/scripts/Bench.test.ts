/**
 * `npm run bench -- --smoke` (the built bench, `node --expose-gc dist/bench/main.js`): one run
 * prints one JSON object with every key of issue 12, every figure a finite number (the
 * throughputs, times and sizes positive), and the daemon's rows verified. It tests that the
 * bench measures and checks, never how fast anything is.
 *
 * Needs Kafka and PostgreSQL: without them the file is skipped on a laptop and fails under
 * `CI=true` (kafkaBrokers and postgresAvailable throw there).
 */
import { spawn } from "node:child_process"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { kafkaBrokers } from "../support/Kafka.ts"
import { postgresAvailable } from "../support/TestDatabase.ts"

const brokers = await kafkaBrokers()
const postgres = await postgresAvailable()
const dist = path.resolve(process.env["INSIGHTS_DIST_DIR"] ?? "dist")

/** throughputs, times and sizes: a number above zero */
const POSITIVE = [
  "engine_events_per_s", "engine_events_per_s_one_worker", "json_parse_events_per_s", "decode_events_per_s",
  "consume_ceiling_events_per_s", "sink_ceiling_rows_per_s", "e2e_events_per_s", "rows_per_event", "e2e_ceiling_events_per_s",
  "e2e_vs_ceiling", "start_ms", "p50_latency_ms", "p99_latency_ms", "watermark_delay_ms", "bytes_per_held_click", "peak_rss_mb", "workers"
] as const
/** the jobs' costs are differences of two throughputs: on a tiny run, noise may make them negative */
const FINITE = ["lake_tap_cost", "recs_cost"] as const
const TARGETS = ["engine_events_per_s", "e2e_events_per_s", "e2e_vs_ceiling", "p99_latency_ms", "bytes_per_held_click", "peak_rss_mb", "start_ms", "lake_tap_cost"] as const

const runBench = (args: ReadonlyArray<string>): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--expose-gc", path.join(dist, "bench", "main.js"), ...args], {
      env: { ...process.env, KAFKA_BROKERS: brokers! },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => { stdout += d.toString() })
    child.stderr.on("data", (d: Buffer) => { stderr += d.toString() })
    const timer = setTimeout(() => child.kill("SIGKILL"), 85_000)
    child.once("error", reject)
    child.once("exit", (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })

describe.skipIf(brokers === undefined || !postgres)("npm run bench -- --smoke", () => {
  it("prints one JSON object with every key of issue 12, finite figures, the daemon's rows verified", { timeout: 90_000 }, async () => {
    const run = await runBench(["--smoke"])
    expect(run.code, run.stderr.slice(-3_000)).toBe(0)
    const result = JSON.parse(run.stdout) as Record<string, unknown>
    for (const key of POSITIVE) {
      const v = result[key]
      expect(typeof v === "number" && Number.isFinite(v) && v > 0, `${key}: ${String(v)}`).toBe(true)
    }
    for (const key of FINITE) {
      const v = result[key]
      expect(typeof v === "number" && Number.isFinite(v), `${key}: ${String(v)}`).toBe(true)
    }
    expect(result["e2e_rows_verified"]).toBe(true)
    const targets = result["targets"] as Record<string, { value: number; met: boolean }>
    for (const key of TARGETS) {
      expect(targets[key]?.value, key).toBe(result[key])
      expect(typeof targets[key]?.met, key).toBe("boolean")
    }
    expect(result["machine"]).toMatchObject({ cores: expect.any(Number), node: process.version, platform: expect.any(String), cpu_model: expect.any(String) })
    expect(result["params"]).toMatchObject({ events: expect.any(Number), e2e_events: expect.any(Number), latency_rate: 5_000, latency_seconds: expect.any(Number), smoke: true })
  })
})
