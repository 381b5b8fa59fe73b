/**
 * Every setting, typed, read from the environment with defaults that work on a laptop.
 * The CLI's flags override the same names.
 */
import { Config, Effect, Option } from "effect"

const ms = (name: string, fallback: number) => Config.Int(name).pipe(Config.withDefault(fallback))

export const EngineConfig = Config.all({
  /** PostgreSQL; absent: an embedded server under `.data/` */
  databaseUrl: Config.option(Config.String("DATABASE_URL")),
  embeddedPgDir: Config.String("EMBEDDED_PG_DIR").pipe(Config.withDefault(".data/postgres")),
  embeddedPgPort: Config.Port("EMBEDDED_PG_PORT").pipe(Config.withDefault(54329)),
  httpPort: Config.Port("HTTP_PORT").pipe(Config.withDefault(8081)),
  kafkaBrokers: Config.option(Config.String("KAFKA_BROKERS")),
  kafkaGroupId: Config.String("KAFKA_GROUP_ID").pipe(Config.withDefault("insights-engine")),
  kafkaPartitions: Config.Int("KAFKA_PARTITIONS").pipe(Config.withDefault(4)),
  /** how long the group waits for a silent member: after a kill -9, the restart waits this long for its partitions */
  kafkaSessionTimeoutMs: ms("KAFKA_SESSION_TIMEOUT_MS", 10_000),
  clicksTopic: Config.String("CLICKS_TOPIC").pipe(Config.withDefault("clicks")),
  checkoutsTopic: Config.String("CHECKOUTS_TOPIC").pipe(Config.withDefault("checkouts")),
  /** W: bounded out-of-orderness */
  outOfOrdernessMs: ms("WATERMARK_DELAY_MS", 15_000),
  /** I: a partition with nothing to read is idle after this much processing time */
  idleTimeoutMs: ms("IDLE_TIMEOUT_MS", 30_000),
  /** A: attribution window */
  windowMs: ms("ATTRIBUTION_WINDOW_MS", 3_600_000),
  /** how long a written checkout id is remembered to drop redeliveries */
  dedupRetentionMs: ms("DEDUP_RETENTION_MS", 3_600_000),
  /** how far ahead of the processing clock an event time may be (SPEC §1) */
  maxFutureMs: ms("MAX_FUTURE_MS", 86_400_000),
  flushRows: Config.Int("SINK_FLUSH_ROWS").pipe(Config.withDefault(5_000)),
  flushIntervalMs: ms("SINK_FLUSH_INTERVAL_MS", 250),
  dimensionRefreshMs: ms("DIMENSION_REFRESH_MS", 5_000),
  generatorRate: Config.Number("GENERATOR_RATE").pipe(Config.withDefault(200)),
  generatorSeed: Config.option(Config.Int("GENERATOR_SEED")),
  usersCsv: Config.String("USERS_CSV").pipe(Config.withDefault("data/Users.csv")),
  productsCsv: Config.String("PRODUCTS_CSV").pipe(Config.withDefault("data/Products.csv")),
  lakeDir: Config.String("LAKE_DIR").pipe(Config.withDefault("lake")),
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
