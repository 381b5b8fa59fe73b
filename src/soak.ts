/**
 * `node dist/soak.js` (run by `scripts/soak`, which builds first): the soak test of
 * src/commands/Soak.ts. Prints a line per sample on stderr and the summary as one line of
 * JSON on stdout. SIGINT/SIGTERM stop it early: the daemon gets SIGTERM and the CSV, the
 * chart and the summary of what was sampled are still written (a second signal kills the
 * children at once). Exit 0, 1 when the run failed, 2 on wrong usage.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { parseArgs } from "node:util"
import * as Soak from "./commands/Soak.ts"

const USAGE = "usage: scripts/soak [--minutes N] [--rate R] [--every-seconds S] [--out DIR] [--kafka]\n" +
  "                   [--warmup FRACTION] [--window-minutes W] [--flat-mb-per-hour T]\n" +
  "       scripts/soak --from-csv FILE [same flags]   (the summary and chart of an earlier run again; its summary.json gives the run's parameters)\n\n" +
  "defaults: 20 minutes, 2000 msg/s, a sample every 60 s, warm-up 0.2 of the run, the attribution window\n" +
  "(and dedup retention) half the warm-up (at most 60), flat when |slope| <= 10 MB/h;\n" +
  "--out test-artifacts/soak-<time>: soak.csv, soak.svg, soak.png, summary.json, daemon.log.\n" +
  "PostgreSQL: DATABASE_URL's server (or TEST_DATABASE_ADMIN_URL, or postgres@127.0.0.1:5432) gets a scratch\n" +
  "database; --kafka: KAFKA_BROKERS (default 127.0.0.1:9092) gets fresh topics. The chart needs chromium (CHROMIUM_PATH)."

const fail = (message: string): never => {
  process.stderr.write(`soak: ${message}\n${USAGE}\n`)
  process.exit(2)
}

const parsed = (() => {
  try {
    return parseArgs({
      options: {
        minutes: { type: "string" }, rate: { type: "string" }, "every-seconds": { type: "string" }, out: { type: "string" },
        kafka: { type: "boolean" }, warmup: { type: "string" }, "window-minutes": { type: "string" },
        "flat-mb-per-hour": { type: "string" }, "from-csv": { type: "string" }, help: { type: "boolean" }
      },
      strict: true
    }).values
  } catch (e) {
    return fail((e as Error).message)
  }
})()
if (parsed.help === true) {
  process.stdout.write(USAGE + "\n")
  process.exit(0)
}

const positive = (flag: string, raw: string | undefined, fallback: number): number => {
  if (raw === undefined) return fallback
  const n = Number(raw)
  return Number.isFinite(n) && n > 0 ? n : fail(`--${flag} must be a positive number, got ${raw}`)
}

const minutes = positive("minutes", parsed.minutes, 20)
const warmup = parsed.warmup === undefined ? 0.2 : Number(parsed.warmup)
if (!(warmup >= 0 && warmup < 1)) fail(`--warmup must be a fraction in [0, 1), got ${parsed.warmup}`)
const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19)

const stopping = new AbortController()
const killing = new AbortController()
let signals = 0
const onSignal = (signal: NodeJS.Signals) => {
  signals++
  process.stderr.write(signals === 1
    ? `soak: ${signal}: stopping the daemon (SIGTERM) and writing what was sampled\n`
    : `soak: ${signal} again: killing the children\n`)
  if (signals === 1) stopping.abort()
  else killing.abort()
}
process.on("SIGINT", onSignal)
process.on("SIGTERM", onSignal)

const fromCsv = parsed["from-csv"]
const earlier = fromCsv === undefined ? undefined : (() => {
  const file = path.join(path.dirname(fromCsv), "summary.json")
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) as Partial<Soak.SoakSummary> : {}
})()
const result = earlier !== undefined && fromCsv !== undefined
  ? await Soak.rechart(fromCsv, {
    minutes: earlier.plannedMinutes ?? minutes,
    rate: parsed.rate === undefined ? earlier.rate ?? 2_000 : positive("rate", parsed.rate, 2_000),
    everySeconds: parsed["every-seconds"] === undefined ? earlier.everySeconds ?? 60 : positive("every-seconds", parsed["every-seconds"], 60),
    kafka: parsed.kafka === true || earlier.source === "kafka",
    warmup,
    windowMinutes: parsed["window-minutes"] === undefined ? earlier.windowMinutes ?? 1 : positive("window-minutes", parsed["window-minutes"], 1),
    flatMbPerHour: positive("flat-mb-per-hour", parsed["flat-mb-per-hour"], 10),
    out: path.resolve(parsed.out ?? path.dirname(fromCsv))
  })
  : await Soak.run({
  minutes,
  rate: positive("rate", parsed.rate, 2_000),
  everySeconds: positive("every-seconds", parsed["every-seconds"], 60),
  out: path.resolve(parsed.out ?? path.join(import.meta.dirname, "..", "test-artifacts", `soak-${stamp}`)),
  kafka: parsed.kafka === true,
  warmup,
  windowMinutes: positive("window-minutes", parsed["window-minutes"], Math.min(60, (minutes * warmup) / 2 || minutes / 10)),
  flatMbPerHour: positive("flat-mb-per-hour", parsed["flat-mb-per-hour"], 10),
  signal: stopping.signal,
  kill: killing.signal,
  log: (line) => process.stderr.write(line + "\n")
})
for (const e of result.summary.errors) process.stderr.write(`soak: ${e}\n`)
process.stdout.write(JSON.stringify(result.summary) + "\n")
process.exitCode = result.exitCode
