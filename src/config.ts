/**
 * Every setting, typed, read from the environment with defaults that work on a laptop.
 * The CLI's flags override the same names.
 *
 * Every numeric setting is checked when it is read: a value that is not a number, or is out
 * of its range, fails with a `Config.ConfigError` whose message is one line naming the
 * setting, e.g. `KAFKA_PARTITIONS must be an integer ≥ 1 (got "0")`; the commands print it
 * and exit 2 (src/Process.ts). An empty variable counts as unset.
 */
import { Config, Effect, Option, Schema, SchemaIssue } from "effect"
import { canonicalTimeZone } from "./jobs/ExportCalendar.ts"

/** What a numeric setting accepts. */
export interface NumericRange {
  /** integers only (decimal digits), or any finite number */
  readonly integer: boolean
  /** smallest accepted value, included */
  readonly min?: number
  /** accepted values are strictly greater than this */
  readonly above?: number
  /** largest accepted value, included */
  readonly max?: number
}

const INTEGER = /^[+-]?\d+$/
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i

/** "an integer ≥ 1", "an integer between 1 and 65535", "a finite number > 0" */
export const describeRange = (range: NumericRange): string => {
  const what = range.integer ? "an integer" : "a finite number"
  if (range.min !== undefined && range.max !== undefined) return `${what} between ${range.min} and ${range.max}`
  const bounds = [
    range.min !== undefined ? `≥ ${range.min}` : undefined,
    range.above !== undefined ? `> ${range.above}` : undefined,
    range.max !== undefined ? `≤ ${range.max}` : undefined
  ].filter((b) => b !== undefined)
  return bounds.length === 0 ? what : `${what} ${bounds.join(" and ")}`
}

const quote = (raw: string): string => JSON.stringify(raw.length > 60 ? `${raw.slice(0, 57)}...` : raw)

/**
 * The value of setting `name` written as `raw`, or the one-line reason it is refused.
 * Integers must be decimal digits and exactly representable (at most 2^53 − 1).
 */
export const parseNumeric = (name: string, raw: string, range: NumericRange): { readonly value: number } | { readonly error: string } => {
  const text = raw.trim()
  const n = (range.integer ? INTEGER : DECIMAL).test(text) ? Number(text) : NaN
  const ok = Number.isFinite(n) &&
    (!range.integer || Number.isSafeInteger(n)) &&
    (range.min === undefined || n >= range.min) &&
    (range.above === undefined || n > range.above) &&
    (range.max === undefined || n <= range.max)
  return ok ? { value: n } : { error: `${name} must be ${describeRange(range)} (got ${quote(raw)})` }
}

/** A refused setting, as the error `Config` fails with; its issue's message is the one line. */
export const invalidSetting = (message: string): Config.ConfigError =>
  new Config.ConfigError(new Schema.SchemaError(new SchemaIssue.InvalidValue({ message })))

/**
 * One line for any config failure: ours carry their message; Effect's own (e.g. a schema
 * `Expected …` with the path `at ["NAME"]` on the next line) are folded into `NAME: Expected …`.
 */
export const describeConfigError = (error: Config.ConfigError): string => {
  const cause = error.cause
  const text = Schema.isSchemaError(cause) ? SchemaIssue.makeFormatterDefault()(cause.issue) : cause.message
  const atPath = /^([\s\S]*?)\n\s*at \[(.*)\]\s*$/.exec(text)
  const line = atPath ? `${atPath[2]!.replaceAll("\"", "")}: ${atPath[1]}` : text
  return line.replace(/\s*\n\s*/g, "; ").trim()
}

/** An optional numeric setting, checked against `range`. */
export const optionalNumber = (name: string, range: NumericRange): Config.Config<Option.Option<number>> =>
  Config.option(Config.String(name)).pipe(Config.mapEffect(Option.match({
    onNone: () => Effect.succeedNone,
    onSome: (raw) => {
      const parsed = parseNumeric(name, raw, range)
      return "value" in parsed ? Effect.succeedSome(parsed.value) : Effect.fail(invalidSetting(parsed.error))
    }
  })))

/** A numeric setting with a default, checked against `range`. */
export const number = (name: string, fallback: number, range: NumericRange): Config.Config<number> =>
  optionalNumber(name, range).pipe(Config.map(Option.getOrElse(() => fallback)))

const port = (name: string, fallback: number) => number(name, fallback, { integer: true, min: 1, max: 65_535 })
/** a duration in milliseconds, at least `min` (0 or 1) */
const ms = (name: string, fallback: number, min: 0 | 1) => number(name, fallback, { integer: true, min })
const count = (name: string, fallback: number, max?: number) =>
  number(name, fallback, max === undefined ? { integer: true, min: 1 } : { integer: true, min: 1, max })

/** A named time zone (canonical spelling), checked when read; empty is unset. */
export const timeZone = (name: string, fallback: string): Config.Config<string> =>
  Config.option(Config.String(name)).pipe(Config.mapEffect(Option.match({
    onNone: () => Effect.succeed(fallback),
    onSome: (raw) => {
      const tz = canonicalTimeZone(raw.trim())
      return tz !== undefined
        ? Effect.succeed(tz)
        : Effect.fail(invalidSetting(`${name} must be a time zone name such as UTC, Europe/Paris or Asia/Tokyo (got ${quote(raw)})`))
    }
  })))

/** where the embedded PostgreSQL keeps its data unless EMBEDDED_PG_DIR says otherwise */
export const DEFAULT_EMBEDDED_PG_DIR = ".data/postgres"

export const EngineConfig = Config.all({
  /** PostgreSQL; absent: an embedded server under `.data/` */
  databaseUrl: Config.option(Config.String("DATABASE_URL")),
  embeddedPgDir: Config.String("EMBEDDED_PG_DIR").pipe(Config.withDefault(DEFAULT_EMBEDDED_PG_DIR)),
  embeddedPgPort: port("EMBEDDED_PG_PORT", 54329),
  httpPort: port("HTTP_PORT", 8081),
  kafkaBrokers: Config.option(Config.String("KAFKA_BROKERS")),
  kafkaGroupId: Config.String("KAFKA_GROUP_ID").pipe(Config.withDefault("insights-engine")),
  kafkaPartitions: count("KAFKA_PARTITIONS", 4),
  /** how long the group waits for a silent member: after a kill -9, the restart waits this long for its partitions
   * (the broker refuses values outside its group.min/max.session.timeout.ms, 6 s to 5 min by default) */
  kafkaSessionTimeoutMs: number("KAFKA_SESSION_TIMEOUT_MS", 10_000, { integer: true, min: 6_000, max: 300_000 }),
  /** how long the Kafka broker may stay unreachable before the daemon exits 1 for a supervisor to restart it; 0: never */
  kafkaGiveUpMs: ms("KAFKA_GIVE_UP_MS", 300_000, 0),
  clicksTopic: Config.String("CLICKS_TOPIC").pipe(Config.withDefault("clicks")),
  checkoutsTopic: Config.String("CHECKOUTS_TOPIC").pipe(Config.withDefault("checkouts")),
  /** W: bounded out-of-orderness */
  outOfOrdernessMs: ms("WATERMARK_DELAY_MS", 15_000, 0),
  /** I: a partition with nothing to read is idle after this much processing time */
  idleTimeoutMs: ms("IDLE_TIMEOUT_MS", 30_000, 1),
  /** A: attribution window */
  windowMs: ms("ATTRIBUTION_WINDOW_MS", 3_600_000, 1),
  /** how long a written checkout id is remembered to drop redeliveries */
  dedupRetentionMs: ms("DEDUP_RETENTION_MS", 3_600_000, 0),
  /** how far ahead of the processing clock an event time may be (SPEC §1) */
  maxFutureMs: ms("MAX_FUTURE_MS", 86_400_000, 0),
  flushRows: count("SINK_FLUSH_ROWS", 5_000),
  // 100 ms: a row is visible at most this long after the watermark passes it (p99 latency ≤ W + 500 ms)
  flushIntervalMs: ms("SINK_FLUSH_INTERVAL_MS", 100, 0),
  dimensionRefreshMs: ms("DIMENSION_REFRESH_MS", 5_000, 1),
  /** messages per second */
  generatorRate: number("GENERATOR_RATE", 200, { integer: false, above: 0 }),
  generatorSeed: optionalNumber("GENERATOR_SEED", { integer: true }),
  usersCsv: Config.String("USERS_CSV").pipe(Config.withDefault("data/Users.csv")),
  productsCsv: Config.String("PRODUCTS_CSV").pipe(Config.withDefault("data/Products.csv")),
  lakeDir: Config.String("LAKE_DIR").pipe(Config.withDefault("lake")),
  /** a raw event is in a lake file at most this long after it arrived (the Firehose buffer interval) */
  lakeFlushMs: ms("LAKE_FLUSH_MS", 300_000, 1),
  /** ... or sooner, once this many events are buffered */
  lakeBufferRows: count("LAKE_BUFFER_ROWS", 100_000),
  /** how often the hourly rollup looks for hours the global watermark has passed */
  rollupEveryMs: ms("ROLLUP_EVERY_MS", 10_000, 1),
  /** how often (processing time) each task's recommender state is stored with its positions */
  recsSnapshotMs: ms("RECS_SNAPSHOT_MS", 60_000, 1),
  /** a user's new list is in shop.user_recommendations at most this long after its batch */
  recsWriteMs: ms("RECS_WRITE_MS", 500, 1),
  // a list at most every 200 ms per user: with RECS_WRITE_MS, an event's list is stored within 1 s (SPEC §7)
  recsRecomputeMs: ms("RECS_RECOMPUTE_MS", 200, 0),
  /** retention (by when a row was recorded; 0 keeps it forever) of engine samples, rejected messages and late events */
  engineStatusRetentionMs: ms("ENGINE_STATUS_RETENTION_MS", 7 * 86_400_000, 0),
  ingestErrorsRetentionMs: ms("INGEST_ERRORS_RETENTION_MS", 30 * 86_400_000, 0),
  lateEventsRetentionMs: ms("LATE_EVENTS_RETENTION_MS", 30 * 86_400_000, 0),
  /** members of the consumer group this process runs (Kafka only): itself and WORKERS − 1 child processes; unset: one per core */
  workers: optionalNumber("WORKERS", { integer: true, min: 1 }),
  /** /readyz says stuck when messages wait and nothing is read, or is read and nothing written, for this long */
  stuckAfterMs: ms("STUCK_AFTER_MS", 60_000, 1),
  /** how often rows past retention are deleted */
  retentionEveryMs: ms("RETENTION_EVERY_MS", 3_600_000, 1),
  /** the zone of the midnight export's days and of its 00:01 schedule (SPEC §6) */
  exportTz: timeZone("EXPORT_TZ", "UTC"),
  grafanaPassword: Config.String("GRAFANA_DB_PASSWORD").pipe(Config.withDefault("grafana"))
})

export type EngineConfig = Config.Success<typeof EngineConfig>

export const load = Effect.gen(function*() {
  return yield* EngineConfig
})

export const runnerOptions = (c: Pick<EngineConfig, "outOfOrdernessMs" | "idleTimeoutMs" | "flushRows" | "flushIntervalMs" | "maxFutureMs">) => ({
  outOfOrdernessMs: c.outOfOrdernessMs,
  idleTimeoutMs: c.idleTimeoutMs,
  flushRows: c.flushRows,
  flushIntervalMs: c.flushIntervalMs,
  maxFutureMs: c.maxFutureMs
})

export { Option }
