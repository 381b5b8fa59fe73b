/**
 * `scripts/soak`: the daemon under a steady load for a long time, its memory sampled, to see
 * whether it stays flat (issue 13). `node dist/main.js` runs on a scratch database (created
 * on the server of `DATABASE_URL`, `TEST_DATABASE_ADMIN_URL` or 127.0.0.1:5432, dropped at
 * the end), its own LAKE_DIR in a temp dir and a free HTTP port; the load is the in-process
 * generator at `rate` messages/s, or with `kafka` `insights generate --to kafka` producing
 * to fresh topics on KAFKA_BROKERS, which the daemon reads (the topics are deleted after).
 *
 * Every `everySeconds` the daemon's `/api/status` gives one CSV row (written as it is taken,
 * so a hard kill of the soak still leaves the rows): RSS, heap used and total, events
 * processed and events/s since the previous row, clicks held and pending checkouts in the
 * attribution state, and users with recommendations. At the end (or on SIGINT/SIGTERM:
 * the daemon is sent SIGTERM and what was sampled is kept) it writes the chart (SVG and
 * PNG, see SoakChart.ts) and `summary.json`, and returns the summary.
 *
 * The flatness verdict: the least-squares slope, in MB (10^6 bytes) per hour, over the
 * samples after the warm-up (the first `warmup` of the run) of RSS and of the heap's floor
 * (the troughs the collector brings heap used back to; the slope of every heap sample is
 * reported too). The attribution window and the dedup retention are set to `windowMinutes`
 * (by default half the warm-up), so the keyed state has reached its steady size when the
 * warm-up ends and growth after it is not the window filling up. A series is flat when
 * |slope| ≤ `flatMbPerHour`, 10 by default: 240 MB a day, the most a daemon of this size
 * (~0.5–1 GB) could keep leaking between weekly restarts without running a 2-core VM out of
 * memory; it is also 1.5 bytes per event at 1 800 events/s, so any per-event leak shows far
 * above it. Beyond the threshold the verdict is `growing` or `falling` only when the slope
 * is more than twice its standard error, and `inconclusive` otherwise: a 20-minute run
 * resolves tens of MB/h (the standard error is in the summary), so it catches gross leaks
 * and a run of hours is what shows the 10 MB/h.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Kafka, logLevel } from "kafkajs"
import * as SoakChart from "./SoakChart.ts"
import { freePort } from "../http/FreePort.ts"

/** What one run does. */
export interface SoakOptions {
  readonly minutes: number
  /** messages per second */
  readonly rate: number
  readonly everySeconds: number
  readonly out: string
  readonly kafka: boolean
  /** the fraction of the run left out of the verdict */
  readonly warmup: number
  /** ATTRIBUTION_WINDOW_MS and DEDUP_RETENTION_MS of the daemon, in minutes */
  readonly windowMinutes: number
  readonly flatMbPerHour: number
  /** the run stops early (and keeps what it sampled) when this aborts */
  readonly signal: AbortSignal
  /** a second abort: the children are killed at once */
  readonly kill: AbortSignal
  readonly log: (line: string) => void
}

/** One row of the CSV. */
export interface Sample {
  /** seconds since the daemon was ready */
  readonly elapsedS: number
  readonly at: string
  readonly rssMb: number
  readonly heapUsedMb: number
  readonly heapTotalMb: number
  readonly eventsTotal: number
  /** since the previous sample; none for the first */
  readonly eventsPerS: number | undefined
  readonly clicksHeld: number
  readonly pendingCheckouts: number
  readonly stateUsers: number
  readonly usersWithRecs: number
}

export const CSV_COLUMNS = [
  "elapsed_s", "at", "rss_mb", "heap_used_mb", "heap_total_mb", "events_total", "events_per_s",
  "clicks_held", "pending_checkouts", "state_users", "users_with_recs"
] as const

export const csvRow = (s: Sample): string =>
  [s.elapsedS.toFixed(1), s.at, s.rssMb.toFixed(2), s.heapUsedMb.toFixed(2), s.heapTotalMb.toFixed(2), s.eventsTotal,
    s.eventsPerS === undefined ? "" : s.eventsPerS.toFixed(1), s.clicksHeld, s.pendingCheckouts, s.stateUsers, s.usersWithRecs].join(",")

/** A least-squares line through (seconds, MB), its slope in MB per hour. */
export interface Fit {
  readonly slopePerHour: number
  /** the standard error of the slope (MB/h), assuming independent residuals */
  readonly stderrPerHour: number
  /** MB at 0 s */
  readonly intercept: number
  readonly fromS: number
  readonly toS: number
  readonly n: number
}

export const fit = (points: ReadonlyArray<readonly [seconds: number, mb: number]>): Fit | undefined => {
  const n = points.length
  if (n < 2) return undefined
  const hours = points.map(([s]) => s / 3600)
  const mt = hours.reduce((a, b) => a + b, 0) / n
  const my = points.reduce((a, [, y]) => a + y, 0) / n
  let sxx = 0
  let sxy = 0
  for (let i = 0; i < n; i++) {
    sxx += (hours[i]! - mt) ** 2
    sxy += (hours[i]! - mt) * (points[i]![1] - my)
  }
  if (sxx === 0) return undefined
  const slope = sxy / sxx
  const intercept = my - slope * mt
  const residuals = points.reduce((a, [, y], i) => a + (y - (intercept + slope * hours[i]!)) ** 2, 0)
  const stderr = n > 2 ? Math.sqrt(residuals / (n - 2) / sxx) : NaN
  return { slopePerHour: slope, stderrPerHour: stderr, intercept, fromS: points[0]![0], toS: points[n - 1]![0], n }
}

const round = (x: number, digits = 1): number => Number(x.toFixed(digits))

const range = (values: ReadonlyArray<number>) =>
  values.length === 0
    ? { first: null, last: null, max: null }
    : { first: round(values[0]!), last: round(values[values.length - 1]!), max: round(Math.max(...values)) }

/** The post-warm-up samples: from `warmup` of the way through the run on. */
export const afterWarmup = (samples: ReadonlyArray<Sample>, warmup: number): ReadonlyArray<Sample> => {
  const end = samples.length === 0 ? 0 : samples[samples.length - 1]!.elapsedS
  return samples.filter((s) => s.elapsedS >= warmup * end)
}

/**
 * The troughs of a sawtooth: the samples lower than both neighbours. Heap used is mostly
 * garbage between collections (at 2 000 events/s it swings by ~250 MB); what a leak raises is
 * the floor the collector brings it back to, so the heap's verdict is taken on these.
 */
export const troughs = (points: ReadonlyArray<readonly [number, number]>): ReadonlyArray<readonly [number, number]> =>
  points.filter((p, i) => i > 0 && i < points.length - 1 && p[1] < points[i - 1]![1] && p[1] < points[i + 1]![1])

/**
 * One series' verdict: `flat` when |slope| ≤ the threshold; beyond it, `growing` (or
 * `falling`) only when the slope is also more than twice its standard error, otherwise
 * `inconclusive` (the run is too short or too noisy to tell: run it longer).
 */
export const judge = (f: Fit | undefined, threshold: number): "flat" | "growing" | "falling" | "inconclusive" | "too few samples" => {
  if (f === undefined) return "too few samples"
  if (Math.abs(f.slopePerHour) <= threshold) return "flat"
  if (!(Math.abs(f.slopePerHour) > 2 * f.stderrPerHour)) return "inconclusive"
  return f.slopePerHour > 0 ? "growing" : "falling"
}

const combine = (verdicts: ReadonlyArray<ReturnType<typeof judge>>): ReturnType<typeof judge> =>
  (["too few samples", "growing", "inconclusive", "falling", "flat"] as const).find((v) => verdicts.includes(v)) ?? "flat"

/** The summary of a run's samples (what `summary.json` and the last line of output hold). */
export const summarize = (samples: ReadonlyArray<Sample>, o: Pick<SoakOptions, "warmup" | "flatMbPerHour" | "rate" | "everySeconds" | "kafka" | "windowMinutes" | "minutes">) => {
  const first = samples[0]
  const last = samples[samples.length - 1]
  const seconds = first !== undefined && last !== undefined ? last.elapsedS - first.elapsedS : 0
  const events = last?.eventsTotal ?? 0
  const eventsPerSecond = seconds > 0 ? (last!.eventsTotal - first!.eventsTotal) / seconds : null
  const steady = afterWarmup(samples, o.warmup)
  const perEvent = (f: Fit | undefined) =>
    f === undefined || eventsPerSecond === null || eventsPerSecond <= 0 ? null : round((f.slopePerHour * 1e6) / (eventsPerSecond * 3600), 3)
  const slope = (f: Fit | undefined) => f === undefined ? null : round(f.slopePerHour, 2)
  const stderr = (f: Fit | undefined) => f === undefined || Number.isNaN(f.stderrPerHour) ? null : round(f.stderrPerHour, 2)
  const points = (pick: (s: Sample) => number) => steady.map((s) => [s.elapsedS, pick(s)] as const)

  const rssFit = fit(points((s) => s.rssMb))
  const heapFit = fit(points((s) => s.heapUsedMb))
  const heapTroughs = troughs(points((s) => s.heapUsedMb))
  // at least three troughs for a line through the floor; fewer: the raw samples
  const floorFit = heapTroughs.length >= 3 ? fit(heapTroughs) : undefined
  const rssVerdict = judge(rssFit, o.flatMbPerHour)
  const heapVerdict = judge(floorFit ?? heapFit, o.flatMbPerHour)
  return {
    summary: {
      samples: samples.length,
      minutes: round(seconds / 60, 2),
      plannedMinutes: o.minutes,
      source: o.kafka ? "kafka" : "generator",
      rate: o.rate,
      everySeconds: o.everySeconds,
      warmupFraction: o.warmup,
      windowMinutes: o.windowMinutes,
      events,
      eventsPerSecond: eventsPerSecond === null ? null : Math.round(eventsPerSecond),
      /** after the warm-up; the slope of a least-squares line, MB/h, its standard error, and the slope per event processed */
      rssMb: { ...range(steady.map((s) => s.rssMb)), slopeMbPerHour: slope(rssFit), stderrMbPerHour: stderr(rssFit), bytesPerEvent: perEvent(rssFit) },
      heapMb: {
        ...range(steady.map((s) => s.heapUsedMb)),
        slopeMbPerHour: slope(heapFit), stderrMbPerHour: stderr(heapFit), bytesPerEvent: perEvent(heapFit),
        /** the same through the troughs (the heap after a collection), when there are three or more */
        floor: floorFit === undefined ? null : {
          troughs: heapTroughs.length,
          first: round(heapTroughs[0]![1]), last: round(heapTroughs[heapTroughs.length - 1]![1]),
          slopeMbPerHour: slope(floorFit), stderrMbPerHour: stderr(floorFit), bytesPerEvent: perEvent(floorFit)
        }
      },
      clicksHeld: range(steady.map((s) => s.clicksHeld)),
      usersWithRecs: last?.usersWithRecs ?? null,
      flat: {
        thresholdMbPerHour: o.flatMbPerHour,
        rss: rssVerdict,
        /** judged on the floor when there is one */
        heap: heapVerdict,
        heapJudgedOn: floorFit === undefined ? "samples" : "floor",
        verdict: combine([rssVerdict, heapVerdict])
      }
    },
    rssFit,
    heapFit: floorFit ?? heapFit,
    heapJudgedOn: floorFit === undefined ? "samples" as const : "floor" as const
  }
}

export type SoakSummary = ReturnType<typeof summarize>["summary"]

// ---------------------------------------------------------------------------------------------
// the run

const root = path.resolve(import.meta.dirname, "../..")
const MB = 1e6


/** Resolves after `ms`, or at once when `signal` aborts. */
const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted === true) return resolve()
    const timer = setTimeout(done, Math.max(0, ms))
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener("abort", done)
      resolve()
    }
    signal?.addEventListener("abort", done, { once: true })
  })

const adminUrl = (): string =>
  process.env["DATABASE_URL"] || process.env["TEST_DATABASE_ADMIN_URL"] || "postgres://postgres@127.0.0.1:5432/postgres"

const adminQuery = (url: string, statement: string): Promise<unknown> =>
  Effect.runPromise(SqlClient.SqlClient.use((sql) => sql.unsafe(statement)).pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })), Effect.scoped))

interface Child {
  readonly process: ChildProcess
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  readonly running: () => boolean
}

const start = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv, logPath: string): Child => {
  const log = fs.openSync(logPath, "a")
  const child = spawn(process.execPath, args, { cwd: root, env, stdio: ["ignore", log, log] })
  fs.closeSync(log)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })))
  return { process: child, exited, running: () => child.exitCode === null && child.signalCode === null }
}

/** SIGTERM, then SIGKILL after `graceMs` (or at once when `kill` aborts). */
const stop = async (child: Child, graceMs: number, kill: AbortSignal) => {
  if (child.running()) child.process.kill("SIGTERM")
  const hard = () => { if (child.running()) child.process.kill("SIGKILL") }
  const timer = setTimeout(hard, graceMs)
  kill.addEventListener("abort", hard, { once: true })
  const exit = await child.exited
  clearTimeout(timer)
  kill.removeEventListener("abort", hard)
  return exit
}

const tail = (file: string, chars = 3_000): string => {
  const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : ""
  return text.slice(-chars)
}

interface StatusJson {
  readonly eventsTotal: number
  readonly state: { readonly users: number; readonly clicksHeld: number; readonly pendingCheckouts: number }
  readonly recommendations: { readonly users: number } | null
  readonly process: { readonly rssBytes: number; readonly heapUsedBytes: number; readonly heapTotalBytes: number } | null
}

export interface SoakResult {
  readonly summary: SoakSummary & {
    readonly interrupted: boolean
    /** the scratch database (dropped at the end) */
    readonly database: string
    readonly daemonExit: { readonly code: number | null; readonly signal: string | null } | null
    readonly files: { readonly csv: string; readonly svg: string; readonly png: string | null; readonly log: string }
    readonly errors: ReadonlyArray<string>
  }
  /** 0, or 1 when the run failed (the daemon did not start or died, too few samples, no chart) */
  readonly exitCode: number
}

type ChartOptions = Pick<SoakOptions, "warmup" | "flatMbPerHour" | "rate" | "everySeconds" | "kafka" | "windowMinutes" | "minutes">

/** The summary of `samples`, and their chart as SVG and PNG (`png` is null when chromium failed; the reason is in `errors`). */
const draw = async (samples: ReadonlyArray<Sample>, o: ChartOptions, files: { readonly svg: string; readonly png: string }, interrupted: boolean, errors: Array<string>) => {
  const { summary, rssFit, heapFit, heapJudgedOn } = summarize(samples, o)
  const source = o.kafka ? "Kafka (generate --to kafka)" : "in-process generator"
  const title = `Soak: ${summary.minutes} min at ${o.rate.toLocaleString("en-US")} msg/s, ${source}${interrupted ? " (stopped early)" : ""}`
  const whole = (v: number | null) => v === null ? "–" : Math.round(v).toLocaleString("en-US")
  const mb = (r: { readonly first: number | null; readonly last: number | null }) => `${whole(r.first)}→${whole(r.last)} MB`
  const floor = summary.heapMb.floor === null ? "" : ` (floor ${mb(summary.heapMb.floor)})`
  const subtitle = [
    `node dist/main.js, Node ${process.version}, ${os.cpus().length} cores, ${(samples[0]?.at ?? "").slice(0, 10)}; a sample every ${o.everySeconds} s (${summary.samples}); ` +
    `warm-up ${Math.round(o.warmup * 100)} %; attribution window and dedup retention ${o.windowMinutes} min`,
    `${whole(summary.eventsPerSecond)} events/s; after warm-up RSS ${mb(summary.rssMb)} (max ${whole(summary.rssMb.max)}), heap ${mb(summary.heapMb)}${floor}; ` +
    `verdict: ${summary.flat.verdict} (flat: |slope| ≤ ${o.flatMbPerHour} MB/h)`
  ]
  fs.writeFileSync(files.svg, SoakChart.svg(samples, { title, subtitle, warmupEndS: o.warmup * (samples[samples.length - 1]?.elapsedS ?? 0), rssFit, heapFit, heapJudgedOn }))
  let png: string | null = files.png
  await SoakChart.png(files.svg, files.png).catch((e: unknown) => {
    errors.push(`the PNG: ${e instanceof Error ? e.message : String(e)}`)
    png = null
  })
  return { summary, png }
}

/** The samples of a soak's CSV. */
export const readCsv = (file: string): Array<Sample> => {
  const [header, ...lines] = fs.readFileSync(file, "utf8").trim().split("\n")
  const columns = header!.split(",")
  return lines.map((line) => {
    const v = Object.fromEntries(line.split(",").map((x, i) => [columns[i]!, x]))
    const n = (c: string) => Number(v[c])
    return {
      elapsedS: n("elapsed_s"), at: v["at"] ?? "", rssMb: n("rss_mb"), heapUsedMb: n("heap_used_mb"), heapTotalMb: n("heap_total_mb"),
      eventsTotal: n("events_total"), eventsPerS: v["events_per_s"] === "" ? undefined : n("events_per_s"),
      clicksHeld: n("clicks_held"), pendingCheckouts: n("pending_checkouts"), stateUsers: n("state_users"), usersWithRecs: n("users_with_recs")
    }
  })
}

/** `--from-csv FILE`: the summary and chart of an earlier run's CSV again (e.g. with another warm-up or threshold), into `out`. */
export const rechart = async (csv: string, o: ChartOptions & { readonly out: string }) => {
  fs.mkdirSync(o.out, { recursive: true })
  const errors: Array<string> = []
  const samples = readCsv(csv)
  const { summary, png } = await draw(samples, o, { svg: path.join(o.out, "soak.svg"), png: path.join(o.out, "soak.png") }, false, errors)
  return { summary: { ...summary, files: { csv, svg: path.join(o.out, "soak.svg"), png }, errors }, exitCode: png === null || samples.length < 2 ? 1 : 0 }
}

export const run = async (o: SoakOptions): Promise<SoakResult> => {
  fs.mkdirSync(o.out, { recursive: true })
  const files = {
    csv: path.join(o.out, "soak.csv"),
    svg: path.join(o.out, "soak.svg"),
    png: path.join(o.out, "soak.png"),
    log: path.join(o.out, "daemon.log"),
    summary: path.join(o.out, "summary.json")
  }
  for (const f of Object.values(files)) fs.rmSync(f, { force: true })
  fs.writeFileSync(files.csv, CSV_COLUMNS.join(",") + "\n")
  const errors: Array<string> = []
  const samples: Array<Sample> = []
  const cleanups: Array<() => Promise<unknown>> = []
  let daemon: Child | undefined
  let generator: Child | undefined
  let daemonExit: { code: number | null; signal: string | null } | null = null
  const id = randomBytes(4).toString("hex")
  const dbName = `insights_soak_${id}`

  try {
    // a scratch database on the server
    const admin = adminUrl()
    await adminQuery(admin, `CREATE DATABASE ${dbName}`)
    cleanups.push(() => adminQuery(admin, `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`))
    const dbUrl = new URL(admin)
    dbUrl.pathname = `/${dbName}`
    const lakeDir = fs.mkdtempSync(path.join(os.tmpdir(), "insights-soak-lake-"))
    cleanups.push(async () => fs.rmSync(lakeDir, { recursive: true, force: true }))
    const port = await freePort()
    const windowMs = String(Math.max(1, Math.round(o.windowMinutes * 60_000)))
    const { KAFKA_BROKERS: brokers, ...inherited } = process.env
    const env: NodeJS.ProcessEnv = {
      ...inherited,
      DATABASE_URL: dbUrl.toString(),
      HTTP_PORT: String(port),
      LAKE_DIR: lakeDir,
      ATTRIBUTION_WINDOW_MS: windowMs,
      DEDUP_RETENTION_MS: windowMs
    }

    if (o.kafka) {
      const list = (brokers || "127.0.0.1:9092").split(",").map((b) => b.trim()).filter((b) => b !== "")
      const topics = { clicks: `soak-${id}-clicks`, checkouts: `soak-${id}-checkouts` }
      const partitions = Number(process.env["KAFKA_PARTITIONS"] || 4)
      const kafka = new Kafka({ clientId: "insights-soak", brokers: list, logLevel: logLevel.NOTHING })
      const kafkaAdmin = kafka.admin()
      await kafkaAdmin.connect()
      await kafkaAdmin.createTopics({ waitForLeaders: true, topics: [topics.clicks, topics.checkouts].map((topic) => ({ topic, numPartitions: partitions })) })
      cleanups.push(async () => {
        await kafkaAdmin.deleteTopics({ topics: [topics.clicks, topics.checkouts] }).catch((e: unknown) => errors.push(`deleting topics: ${String(e)}`))
        await kafkaAdmin.disconnect()
      })
      Object.assign(env, { KAFKA_BROKERS: list.join(","), CLICKS_TOPIC: topics.clicks, CHECKOUTS_TOPIC: topics.checkouts, KAFKA_PARTITIONS: String(partitions), KAFKA_GROUP_ID: `insights-soak-${id}` })
      const duration = Math.ceil(o.minutes * 60 + 300) // outlasts the daemon's start; stopped with it
      generator = start([path.join(root, "dist/cli.js"), "generate", "--to", "kafka", "--rate", String(o.rate), "--duration", String(duration), "--seed", "1"],
        env, path.join(o.out, "generator.log"))
      o.log(`soak: generate --to kafka at ${o.rate} msg/s to ${topics.clicks}, ${topics.checkouts} on ${list.join(",")}`)
    } else {
      Object.assign(env, { GENERATOR_RATE: String(o.rate), GENERATOR_SEED: "1" })
    }

    daemon = start([path.join(root, "dist/main.js")], env, files.log)
    const base = `http://127.0.0.1:${port}`
    // ready: /readyz answers 200
    const deadline = performance.now() + 120_000
    for (;;) {
      if (o.signal.aborted) break
      if (!daemon.running()) throw new Error(`the daemon exited during start-up:\n${tail(files.log)}`)
      const res = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(3_000) }).catch(() => undefined)
      if (res?.status === 200) break
      if (performance.now() > deadline) throw new Error(`the daemon's /readyz did not answer 200 within 120 s:\n${tail(files.log)}`)
      await sleep(250, o.signal)
    }
    o.log(`soak: daemon ready on ${base} (${o.kafka ? "kafka" : "generator"}, ${o.rate} msg/s, window ${o.windowMinutes} min); sampling every ${o.everySeconds} s for ${o.minutes} min into ${o.out}`)

    const t0 = performance.now()
    const total = o.minutes * 60
    for (let k = 0; !o.signal.aborted; k++) {
      const target = k * o.everySeconds
      await sleep(t0 + target * 1000 - performance.now(), o.signal)
      if (o.signal.aborted) break
      if (!daemon.running()) throw new Error(`the daemon exited during the soak:\n${tail(files.log)}`)
      const elapsedS = (performance.now() - t0) / 1000
      const status = await fetch(`${base}/api/status`, { signal: AbortSignal.timeout(10_000) })
        .then((r) => r.json() as Promise<StatusJson>)
        .catch((e: unknown) => { errors.push(`sample at ${elapsedS.toFixed(0)} s: ${String(e)}`); return undefined })
      if (status?.process != null) {
        const previous = samples[samples.length - 1]
        const sample: Sample = {
          elapsedS,
          at: new Date().toISOString(),
          rssMb: status.process.rssBytes / MB,
          heapUsedMb: status.process.heapUsedBytes / MB,
          heapTotalMb: status.process.heapTotalBytes / MB,
          eventsTotal: status.eventsTotal,
          eventsPerS: previous === undefined ? undefined : (status.eventsTotal - previous.eventsTotal) / (elapsedS - previous.elapsedS),
          clicksHeld: status.state.clicksHeld,
          pendingCheckouts: status.state.pendingCheckouts,
          stateUsers: status.state.users,
          usersWithRecs: status.recommendations?.users ?? 0
        }
        samples.push(sample)
        fs.appendFileSync(files.csv, csvRow(sample) + "\n")
        const whole = Math.round(elapsedS)
        const clock = `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`
        o.log(`soak: ${clock}  rss ${sample.rssMb.toFixed(0)} MB  heap ${sample.heapUsedMb.toFixed(0)} MB  ` +
          `events ${sample.eventsTotal}${sample.eventsPerS === undefined ? "" : ` (${sample.eventsPerS.toFixed(0)}/s)`}  clicks held ${sample.clicksHeld}`)
      }
      if (target >= total - 1e-9) break
    }
  } catch (e) {
    errors.push(e instanceof Error ? e.message : String(e))
  } finally {
    if (generator !== undefined) await stop(generator, 10_000, o.kill)
    if (daemon !== undefined) {
      const exit = await stop(daemon, 15_000, o.kill)
      daemonExit = { code: exit.code, signal: exit.signal }
      if (exit.code !== 0) errors.push(`the daemon's exit after SIGTERM: code ${exit.code}, signal ${exit.signal}`)
    }
    for (const cleanup of cleanups.reverse()) await cleanup().catch((e: unknown) => errors.push(`clean-up: ${String(e)}`))
  }

  const { summary, png } = await draw(samples, o, files, o.signal.aborted, errors)
  const result = {
    ...summary,
    interrupted: o.signal.aborted,
    database: dbName,
    daemonExit,
    files: { csv: files.csv, svg: files.svg, png, log: files.log },
    errors
  }
  fs.writeFileSync(files.summary, JSON.stringify(result, null, 2) + "\n")
  const failed = samples.length < 2 || png === null || errors.some((e) => !e.startsWith("sample at"))
  return { summary: result, exitCode: failed ? 1 : 0 }
}
