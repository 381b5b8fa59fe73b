#!/usr/bin/env node
/**
 * `insights <command>`: one entry point for the daemon and the batch tools (SPEC §9).
 * Flags are parsed by Node's `util.parseArgs` (strict: an unknown flag is an error); wrong
 * usage prints one line and exits 2.
 */
import { quietKafkajsTimerWarning } from "./Warnings.ts"
import { Effect, Layer, Option } from "effect"
import * as fs from "node:fs"
import { parseArgs, type ParseArgsConfig } from "node:util"
import { EngineConfig } from "./config.ts"
import * as CommandDatabase from "./commands/Database.ts"
import * as EvalRecs from "./commands/EvalRecs.ts"
import * as Generate from "./commands/Generate.ts"
import * as GenerateKafka from "./commands/GenerateKafka.ts"
import { loadDims } from "./commands/LoadDims.ts"
import { replay } from "./commands/Replay.ts"
import * as Dimensions from "./jobs/Dimensions.ts"
import { isDay } from "./jobs/ExportCalendar.ts"
import { daemon } from "./Daemon.ts"
import { runMain, UsageError } from "./Process.ts"
import { defaultBrokers, parseBrokers } from "./sources/KafkaClient.ts"

quietKafkajsTimerWarning()

interface Command {
  readonly summary: string
  readonly usage: string
  readonly options: NonNullable<ParseArgsConfig["options"]>
  readonly run: (flags: Record<string, string | boolean | undefined>, positionals: ReadonlyArray<string>) => Effect.Effect<unknown, unknown>
  /** takes bare words after its flags (e.g. `--to files DIR`) */
  readonly positionals?: boolean
}

const requireFile = (flag: string, path: string | boolean | undefined): string | undefined => {
  if (path === undefined) return undefined
  if (typeof path !== "string" || path === "") throw new UsageError(`--${flag} needs a file`)
  if (!fs.existsSync(path)) throw new UsageError(`--${flag}: no such file: ${path}`)
  return path
}

const withDatabase = <A, E, R>(f: (config: EngineConfig) => Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const config = yield* EngineConfig
    return yield* f(config).pipe(
      Effect.provide(Layer.provideMerge(Dimensions.layer(config.dimensionRefreshMs), CommandDatabase.layer(config)))
    )
  }).pipe(Effect.scoped)

const commands: Record<string, Command> = {
  run: {
    summary: "run the daemon (what `node dist/main.js` runs)",
    usage: "insights run\n\nReads DATABASE_URL, KAFKA_BROKERS, HTTP_PORT and the other settings from the environment (see README).\n" +
      "HTTP on HTTP_PORT (default 8081): / (status page), /api/status, /metrics (Prometheus), /healthz, /readyz,\n" +
      "/api/users/USER_ID/recommendations.",
    options: {},
    run: () => daemon
  },
  "load-dims": {
    summary: "upsert the users and products dimensions from CSV files",
    usage: "insights load-dims --users FILE --products FILE\n\nCSV with a header row; columns matched case-insensitively; user_id / product_id required.",
    options: { users: { type: "string" }, products: { type: "string" } },
    run: (flags) => {
      const users = requireFile("users", flags["users"])
      const products = requireFile("products", flags["products"])
      if (users === undefined && products === undefined) throw new UsageError("load-dims needs --users FILE and/or --products FILE")
      return withDatabase(() => loadDims({ users, products }))
    }
  },
  generate: {
    summary: "the synthetic store: users/products CSVs and a stream of clicks and checkouts to files or Kafka",
    usage: "insights generate --to files DIR|kafka [--rate N|max] [--seed S] [--count N | --duration SECONDS] [--format engine|flink] [--start ISO]\n\n" +
      "Same seed, same events. Files are kcat format (key<TAB>value): DIR/clicks.txt, DIR/checkouts.txt, plus DIR/Users.csv and DIR/Products.csv.\n" +
      "Kafka: KAFKA_BROKERS (default 127.0.0.1:9092), CLICKS_TOPIC, CHECKOUTS_TOPIC (created with KAFKA_PARTITIONS when missing); keyed by user_id,\n" +
      "event time = the clock at production; --rate max (a backfill) needs --count or --duration; otherwise it runs until interrupted.\n" +
      "Writing files shows progress on stderr: a bar with rate and ETA on a terminal, a line every 5 s otherwise.",
    options: {
      to: { type: "string" }, rate: { type: "string" }, seed: { type: "string" }, count: { type: "string" },
      duration: { type: "string" }, format: { type: "string" }, start: { type: "string" }
    },
    positionals: true,
    run: (flags, positionals) => {
      const positive = (flag: string): number | undefined => {
        const v = flags[flag]
        if (v === undefined) return undefined
        const n = Number(v)
        if (typeof v !== "string" || !Number.isFinite(n) || n <= 0) throw new UsageError(`--${flag} must be a positive number, got ${String(v)}`)
        return n
      }
      const rate = flags["rate"] === "max" ? "max" as const : positive("rate") ?? 100
      const format = flags["format"] ?? "engine"
      if (format !== "engine" && format !== "flink") throw new UsageError(`--format must be engine or flink, got ${String(format)}`)
      const start = flags["start"] === undefined ? undefined : Date.parse(String(flags["start"]))
      if (start !== undefined && Number.isNaN(start)) throw new UsageError(`--start must be an ISO timestamp, got ${String(flags["start"])}`)
      const options: Generate.GenerateOptions = {
        seed: flags["seed"] === undefined ? 1 : Math.trunc(Number(flags["seed"])),
        rate, count: positive("count"), durationMs: (positive("duration") ?? NaN) * 1000 || undefined, format, start
      }
      if (!Number.isFinite(options.seed)) throw new UsageError(`--seed must be an integer, got ${String(flags["seed"])}`)
      const to = flags["to"]
      if (to === "kafka") {
        if (start !== undefined) throw new UsageError("generate --to kafka stamps events with the clock: --start applies to --to files")
        if (rate === "max" && options.count === undefined && options.durationMs === undefined) {
          throw new UsageError("generate --to kafka --rate max needs --count N or --duration SECONDS")
        }
        return Effect.gen(function*() {
          const config = yield* EngineConfig
          yield* GenerateKafka.toKafka(options, {
            brokers: parseBrokers(Option.getOrElse(config.kafkaBrokers, () => defaultBrokers)),
            topics: { clicks: config.clicksTopic, checkouts: config.checkoutsTopic },
            partitions: config.kafkaPartitions
          })
        }).pipe(Effect.scoped)
      }
      if (typeof to !== "string" || !to.startsWith("files")) throw new UsageError("generate needs --to files DIR or --to kafka")
      const dir = to === "files" ? positionals[0] : to.slice("files".length).replace(/^[=:]/, "")
      if (dir === undefined || dir === "") throw new UsageError("generate --to files needs a directory: --to files DIR")
      return Generate.toFiles(dir, options)
    }
  },
  replay: {
    summary: "run the pipeline over kcat-format files and exit when every row is written",
    usage: "insights replay --clicks FILE --checkouts FILE [--users FILE --products FILE]\n\n" +
      "One message a line, `key<TAB>value` or a bare value (as `kcat -C -K'\\t'` writes them).\n" +
      "Each file is one partition; end of input is end of time, so every checkout is written before exit.\n" +
      "Progress on stderr: a bar with rate and ETA on a terminal (the total once the files' lines are counted), a line every 5 s otherwise.",
    options: { clicks: { type: "string" }, checkouts: { type: "string" }, users: { type: "string" }, products: { type: "string" } },
    run: (flags) => {
      const clicks = requireFile("clicks", flags["clicks"])
      const checkouts = requireFile("checkouts", flags["checkouts"])
      const users = requireFile("users", flags["users"])
      const products = requireFile("products", flags["products"])
      if (clicks === undefined && checkouts === undefined) throw new UsageError("replay needs --clicks FILE and/or --checkouts FILE")
      return withDatabase((config) =>
        Effect.gen(function*() {
          if (users !== undefined || products !== undefined) yield* loadDims({ users, products })
          yield* replay(config, { clicks, checkouts })
        }))
    }
  },
  export: {
    summary: "the midnight export of one day to the lake, by hand",
    usage: "insights export --date YYYY-MM-DD\n\n" +
      "Writes that day's checkout_attribution rows (the day in EXPORT_TZ, default UTC) to LAKE_DIR/exports/checkouts/dt=DAY/part-0.parquet\n" +
      "and its summary to LAKE_DIR/exports/daily_summary/dt=DAY/part-0.parquet, replacing what an earlier run wrote; the same code\n" +
      "as the daemon's 00:01 schedule, recorded in shop.export_runs (waits while another process runs an export).\n" +
      "Progress on stderr for long days; one summary line at the end. A failure is one line, exit 1.",
    options: { date: { type: "string" } },
    run: (flags) => {
      const date = flags["date"]
      if (date === undefined) throw new UsageError("export needs --date YYYY-MM-DD")
      if (typeof date !== "string" || !isDay(date)) throw new UsageError(`--date must be a day written YYYY-MM-DD, got ${String(date)}`)
      return Effect.gen(function*() {
        const config = yield* EngineConfig
        const Export = yield* Effect.promise(() => import("./commands/Export.ts")) // DuckDB loads with it
        yield* Export.exportDay(config, date).pipe(Effect.provide(CommandDatabase.layer(config)))
      }).pipe(Effect.scoped)
    }
  },
  "eval-recs": {
    summary: "how good the recommendations are: hit rate @10 vs the most popular products, on the generator's shoppers",
    usage: "insights eval-recs [--json] [--seed S] [--users N] [--sessions M]\n\n" +
      "Generates shoppers with hidden tastes (N users, default 1000; the default 200 products; M visits per user on average,\n" +
      "default 20, about one a day of event time), feeds every event in event-time order to the recommender, and checks each\n" +
      "add-to-cart against the user's top 10 as it stood just before it, and against the most popular products so far (plain\n" +
      "counts) less the user's purchases of the last 24 h. --json: one line {hit_rate_at_10, baseline_hit_rate_at_10, users,\n" +
      "events, add_to_carts, p99_update_ms, seed, sessions}; p99_update_ms is the p99 of one observe + recommend.",
    options: { json: { type: "boolean" }, seed: { type: "string" }, users: { type: "string" }, sessions: { type: "string" } },
    run: (flags) => {
      const integer = (flag: string, fallback: number, min: number): number => {
        const v = flags[flag]
        if (v === undefined) return fallback
        const n = Number(v)
        if (typeof v !== "string" || !Number.isSafeInteger(n) || n < min) throw new UsageError(`--${flag} must be an integer ≥ ${min}, got ${String(v)}`)
        return n
      }
      const d = EvalRecs.defaultEvalOptions
      return EvalRecs.evalRecs(
        { seed: integer("seed", d.seed, -(2 ** 31)), users: integer("users", d.users, 1), sessions: integer("sessions", d.sessions, 1) },
        flags["json"] === true
      )
    }
  },
  query: {
    summary: "DuckDB over the lake: raw.clicks, raw.checkouts, exports.checkouts, exports.daily_summary",
    usage: "insights query \"SQL\" [--json | --csv]\n\n" +
      "Runs SQL in DuckDB (in memory) over LAKE_DIR (default ./lake), no database needed. Views:\n" +
      "  raw.clicks, raw.checkouts   LAKE_DIR/raw/<topic>/dt=…/hour=…/*.parquet (the events' fields, partition, offset, dt, hour)\n" +
      "  exports.checkouts           LAKE_DIR/exports/checkouts/dt=…/ (the midnight export: checkout_attribution's columns, dt)\n" +
      "  exports.daily_summary       LAKE_DIR/exports/daily_summary/dt=…/ (day, checkouts, paid_checkouts, units, revenue, profit, attributed_share, dt)\n" +
      "A table with no files yet is an empty view. Times are shown in UTC.\n" +
      "Output: an aligned table; --json one JSON object per row; --csv with a header row.\n" +
      "SQL DuckDB refuses, or a missing LAKE_DIR: one line, exit 2; a failure reading the files: one line, exit 1.",
    options: { json: { type: "boolean" }, csv: { type: "boolean" } },
    positionals: true,
    run: (flags, positionals) => {
      if (positionals.length === 0) throw new UsageError("query needs the SQL to run: insights query \"SELECT …\"")
      if (positionals.length > 1) throw new UsageError(`query takes one SQL argument (quote it), got ${positionals.length}`)
      if (flags["json"] && flags["csv"]) throw new UsageError("query: --json and --csv exclude each other")
      const format = flags["json"] ? "json" : flags["csv"] ? "csv" : "table"
      return Effect.gen(function*() {
        const config = yield* EngineConfig
        const Query = yield* Effect.promise(() => import("./commands/Query.ts")) // DuckDB loads with it
        yield* Query.query(config, positionals[0]!, format)
      })
    }
  }
}

const NOT_YET: Record<string, string> = {}

const mainHelp = () =>
  [
    "insights: real-time e-commerce insights engine",
    "",
    "usage: insights <command> [flags]    (insights <command> --help for its flags)",
    "",
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`),
    ...Object.entries(NOT_YET).filter(([name]) => !(name in commands)).map(([name, s]) => `  ${name.padEnd(10)} ${s} [not available yet]`),
    ""
  ].join("\n")

export const cli = (argv: ReadonlyArray<string>): Effect.Effect<unknown, unknown> =>
  Effect.suspend(() => {
    const [name, ...rest] = argv
    if (name === undefined || name === "--help" || name === "-h" || name === "help") {
      return Effect.sync(() => process.stdout.write(mainHelp() + "\n"))
    }
    const command = commands[name]
    if (command === undefined) {
      if (name in NOT_YET) throw new UsageError(`${name} is not available in this version`)
      throw new UsageError(`unknown command "${name}" (try insights --help)`)
    }
    let values: Record<string, string | boolean | undefined>
    let positionals: Array<string>
    try {
      ;({ values, positionals } = parseArgs({ args: [...rest], options: { ...command.options, help: { type: "boolean", short: "h" } }, strict: true, allowPositionals: true }))
    } catch (e) {
      throw new UsageError(`${name}: ${(e as Error).message.split("\n")[0]}`)
    }
    if (values["help"]) return Effect.sync(() => process.stdout.write(`usage: ${command.usage}\n`))
    if (positionals.length > 0 && !command.positionals) throw new UsageError(`${name}: unexpected argument "${positionals[0]}"`)
    return command.run(values, positionals)
  }).pipe(Effect.catchDefect((defect) => defect instanceof UsageError ? Effect.fail(defect) : Effect.die(defect)))

runMain(cli(process.argv.slice(2)))
