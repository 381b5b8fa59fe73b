/**
 * The settings' checks (src/config.ts): every numeric setting refuses a value that is not a
 * number or is out of its range with one line naming it; empty means unset.
 */
import { assert, describe, it } from "@effect/vitest"
import { Config, ConfigProvider, Effect, Exit, Option } from "effect"
import { describeConfigError, describeRange, EngineConfig, parseNumeric } from "../src/config.ts"

const read = (env: Record<string, string>) => Effect.runSyncExit(EngineConfig.parse(ConfigProvider.fromEnv({ env })))

/** the one line the commands print, or undefined when the settings are accepted */
const refusal = (env: Record<string, string>): string | undefined => {
  const exit = read(env)
  if (Exit.isSuccess(exit)) return undefined
  const error = Exit.findErrorOption(exit)
  assert.isTrue(Option.isSome(error) && error.value instanceof Config.ConfigError, "fails with a ConfigError")
  return describeConfigError(Option.getOrThrow(error))
}

const accepted = (env: Record<string, string>) => {
  const exit = read(env)
  assert.isTrue(Exit.isSuccess(exit), `accepted: ${JSON.stringify(env)} (${refusal(env)})`)
  return Exit.isSuccess(exit) ? exit.value : undefined!
}

describe("config", () => {
  it("defaults, including MAX_FUTURE_MS", () => {
    const c = accepted({})
    assert.strictEqual(c.maxFutureMs, 86_400_000)
    assert.strictEqual(c.httpPort, 8081)
    assert.strictEqual(c.kafkaPartitions, 4)
    assert.strictEqual(c.generatorRate, 200)
    assert.isTrue(Option.isNone(c.generatorSeed))
    assert.isTrue(Option.isNone(c.databaseUrl))
  })

  it("reads values within range, the bounds included; empty is unset", () => {
    const c = accepted({
      HTTP_PORT: "65535", EMBEDDED_PG_PORT: "1", KAFKA_PARTITIONS: "1", KAFKA_SESSION_TIMEOUT_MS: "6000",
      WATERMARK_DELAY_MS: "0", IDLE_TIMEOUT_MS: "1", ATTRIBUTION_WINDOW_MS: "1", DEDUP_RETENTION_MS: "0",
      MAX_FUTURE_MS: "0", KAFKA_GROUP_ID: " g ", SINK_FLUSH_ROWS: "1", SINK_FLUSH_INTERVAL_MS: "0", DIMENSION_REFRESH_MS: "1",
      GENERATOR_RATE: "0.5", GENERATOR_SEED: "-7"
    })
    assert.deepStrictEqual(
      [c.httpPort, c.embeddedPgPort, c.kafkaPartitions, c.kafkaSessionTimeoutMs, c.outOfOrdernessMs, c.idleTimeoutMs, c.windowMs,
        c.dedupRetentionMs, c.maxFutureMs, c.flushRows, c.flushIntervalMs, c.dimensionRefreshMs, c.generatorRate],
      [65535, 1, 1, 6000, 0, 1, 1, 0, 0, 1, 0, 1, 0.5]
    )
    assert.deepStrictEqual(c.generatorSeed, Option.some(-7))
    assert.strictEqual(accepted({ KAFKA_SESSION_TIMEOUT_MS: "300000" }).kafkaSessionTimeoutMs, 300_000)
    assert.strictEqual(accepted({}).kafkaGiveUpMs, 300_000)
    assert.strictEqual(accepted({ KAFKA_GIVE_UP_MS: "0" }).kafkaGiveUpMs, 0)
    assert.strictEqual(accepted({ SINK_FLUSH_ROWS: "", HTTP_PORT: "" }).flushRows, 5_000)
    assert.strictEqual(accepted({ GENERATOR_RATE: "1e3" }).generatorRate, 1000)
  })

  it("refuses each bad value with one line naming the setting", () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ KAFKA_PARTITIONS: "0" }, `KAFKA_PARTITIONS must be an integer ≥ 1 (got "0")`],
      [{ KAFKA_PARTITIONS: "four" }, `KAFKA_PARTITIONS must be an integer ≥ 1 (got "four")`],
      [{ SINK_FLUSH_ROWS: "0" }, `SINK_FLUSH_ROWS must be an integer ≥ 1 (got "0")`],
      [{ HTTP_PORT: "0" }, `HTTP_PORT must be an integer between 1 and 65535 (got "0")`],
      [{ HTTP_PORT: "65536" }, `HTTP_PORT must be an integer between 1 and 65535 (got "65536")`],
      [{ EMBEDDED_PG_PORT: "54329x" }, `EMBEDDED_PG_PORT must be an integer between 1 and 65535 (got "54329x")`],
      [{ KAFKA_SESSION_TIMEOUT_MS: "5999" }, `KAFKA_SESSION_TIMEOUT_MS must be an integer between 6000 and 300000 (got "5999")`],
      [{ KAFKA_SESSION_TIMEOUT_MS: "300001" }, `KAFKA_SESSION_TIMEOUT_MS must be an integer between 6000 and 300000 (got "300001")`],
      [{ KAFKA_GIVE_UP_MS: "-1" }, `KAFKA_GIVE_UP_MS must be an integer ≥ 0 (got "-1")`],
      [{ WATERMARK_DELAY_MS: "-1" }, `WATERMARK_DELAY_MS must be an integer ≥ 0 (got "-1")`],
      [{ IDLE_TIMEOUT_MS: "0" }, `IDLE_TIMEOUT_MS must be an integer ≥ 1 (got "0")`],
      [{ ATTRIBUTION_WINDOW_MS: "0" }, `ATTRIBUTION_WINDOW_MS must be an integer ≥ 1 (got "0")`],
      [{ ATTRIBUTION_WINDOW_MS: "1h" }, `ATTRIBUTION_WINDOW_MS must be an integer ≥ 1 (got "1h")`],
      [{ DEDUP_RETENTION_MS: "-5" }, `DEDUP_RETENTION_MS must be an integer ≥ 0 (got "-5")`],
      [{ MAX_FUTURE_MS: "-1" }, `MAX_FUTURE_MS must be an integer ≥ 0 (got "-1")`],
      [{ MAX_FUTURE_MS: "1.5" }, `MAX_FUTURE_MS must be an integer ≥ 0 (got "1.5")`],
      [{ SINK_FLUSH_ROWS: "0" }, `SINK_FLUSH_ROWS must be an integer ≥ 1 (got "0")`],
      [{ SINK_FLUSH_INTERVAL_MS: "-1" }, `SINK_FLUSH_INTERVAL_MS must be an integer ≥ 0 (got "-1")`],
      [{ DIMENSION_REFRESH_MS: "0" }, `DIMENSION_REFRESH_MS must be an integer ≥ 1 (got "0")`],
      [{ GENERATOR_RATE: "0" }, `GENERATOR_RATE must be a finite number > 0 (got "0")`],
      [{ GENERATOR_RATE: "Infinity" }, `GENERATOR_RATE must be a finite number > 0 (got "Infinity")`],
      [{ GENERATOR_RATE: "1e999" }, `GENERATOR_RATE must be a finite number > 0 (got "1e999")`],
      [{ GENERATOR_RATE: "NaN" }, `GENERATOR_RATE must be a finite number > 0 (got "NaN")`],
      [{ GENERATOR_SEED: "0x10" }, `GENERATOR_SEED must be an integer (got "0x10")`],
      [{ GENERATOR_SEED: "99999999999999999999" }, `GENERATOR_SEED must be an integer (got "99999999999999999999")`]
    ]
    for (const [env, line] of cases) assert.strictEqual(refusal(env), line, JSON.stringify(env))
  })

  it("EXPORT_TZ: UTC by default, names read canonically, unknown zones and offsets refused in one line", () => {
    assert.strictEqual(accepted({}).exportTz, "UTC")
    assert.strictEqual(accepted({ EXPORT_TZ: "" }).exportTz, "UTC")
    assert.strictEqual(accepted({ EXPORT_TZ: "asia/tokyo" }).exportTz, "Asia/Tokyo")
    assert.strictEqual(accepted({ EXPORT_TZ: "Europe/Paris" }).exportTz, "Europe/Paris")
    assert.strictEqual(refusal({ EXPORT_TZ: "Mars/Olympus" }), `EXPORT_TZ must be a time zone name such as UTC, Europe/Paris or Asia/Tokyo (got "Mars/Olympus")`)
    assert.strictEqual(refusal({ EXPORT_TZ: "+09:00" }), `EXPORT_TZ must be a time zone name such as UTC, Europe/Paris or Asia/Tokyo (got "+09:00")`)
  })

  it("parses numbers strictly and says what it wanted", () => {
    assert.deepStrictEqual(parseNumeric("N", "12", { integer: true, min: 1 }), { value: 12 })
    assert.deepStrictEqual(parseNumeric("N", "+12", { integer: true }), { value: 12 })
    for (const raw of ["", " ", "1e3", "1.0", "0b1", "12abc", "Infinity"]) {
      assert.isTrue("error" in parseNumeric("N", raw, { integer: true }), raw)
    }
    assert.deepStrictEqual(parseNumeric("R", ".5", { integer: false, above: 0 }), { value: 0.5 })
    assert.strictEqual(describeRange({ integer: true }), "an integer")
    assert.strictEqual(describeRange({ integer: true, min: 0 }), "an integer ≥ 0")
    assert.strictEqual(describeRange({ integer: false, above: 0, max: 10 }), "a finite number > 0 and ≤ 10")
    const long = parseNumeric("N", "x".repeat(200), { integer: true })
    assert.isTrue("error" in long && long.error.length < 120, "a long value is shortened")
  })

  it("folds Effect's own config errors into one line too", () => {
    const exit = Effect.runSyncExit(Config.Int("SOME_INT").parse(ConfigProvider.fromEnv({ env: { SOME_INT: "abc" } })))
    const error = Option.getOrThrow(Exit.findErrorOption(exit))
    const line = describeConfigError(error)
    assert.notInclude(line, "\n")
    assert.match(line, /^SOME_INT: /)
  })
})
