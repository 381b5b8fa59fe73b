import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { EngineStats } from "../../src/engine/EngineStats.ts"
import * as Metrics from "../../src/http/Metrics.ts"
import { checkExposition, parseFamilies, promtool, valueOf } from "./PromText.ts"

const T0 = Date.parse("2026-03-01T12:00:00Z")

const probe: Metrics.ProcessProbe = {
  memory: () => ({ rss: 100_000_000, heapUsed: 40_000_000, heapTotal: 60_000_000, external: 1_000_000 }),
  cpuMicros: () => 2_500_000,
  startedAt: T0 - 60_000
}

const records = (topic: string, partition: number, from: number, n: number) => ({
  _tag: "Records" as const,
  topic,
  partition,
  backlog: false,
  highWatermark: from + n + 5,
  records: Array.from({ length: n }, (_, i) => ({ topic, partition, offset: from + i, key: "u1", value: "{}" }))
})

const statsWithTraffic = () => {
  const stats = new EngineStats()
  stats.partition({ topic: "clicks", partition: 0 })
  stats.partition({ topic: "checkouts", partition: 0 })
  stats.recordRead(records("clicks", 0, 0, 100), T0)
  stats.recordRead(records("checkouts", 0, 0, 7), T0)
  stats.job("attribution").count("ingest_errors", 2)
  stats.job("attribution").count("late_clicks", 3)
  stats.job("attribution").count("checkouts_written", 5)
  setWatermark(stats, T0 - 4_000)
  stats.job("attribution").recordSinkWrite(10, 10, T0 - 500)
  stats.job("attribution").recordSinkWrite(20, 20, T0 - 400)
  stats.job("attribution").recordSinkWrite(30, 30, T0 - 300)
  return stats
}

/** The process watermark is its tasks': one task at `watermark`. */
const setWatermark = (stats: EngineStats, watermark: number) =>
  stats.attach(() => [{ id: 0, epoch: 1, watermark, partitions: [], isIdle: () => false, state: () => ({ keys: 0, held: 0, pending: 0, timers: 0 }) }], ["attribution"])

/** Each test gets its own registry, as a fresh process would. */
const scrape = (scraper: Metrics.Scraper, now: number) => scraper.format(now)
const isolated = <A, E>(effect: Effect.Effect<A, E>) => Effect.provideService(effect, Metric.MetricRegistry, new Map())

describe("Metrics", () => {
  it.effect("renders the job's figures with Prometheus names, in valid text", () =>
    isolated(Effect.gen(function*() {
      const stats = statsWithTraffic()
      const text = yield* scrape(Metrics.make(stats, probe), T0)
      const e = checkExposition(text)
      assert.deepStrictEqual(e.problems, [])
      assert.strictEqual(valueOf(e, "insights_events_in_total", { topic: "clicks" }), 100)
      assert.strictEqual(valueOf(e, "insights_events_in_total", { topic: "checkouts" }), 7)
      assert.strictEqual(valueOf(e, "insights_ingest_errors_total"), 2)
      assert.strictEqual(valueOf(e, "insights_late_events_total", { kind: "click" }), 3)
      assert.strictEqual(valueOf(e, "insights_late_events_total", { kind: "checkout" }), 0)
      assert.strictEqual(valueOf(e, "insights_checkouts_written_total"), 5)
      assert.strictEqual(valueOf(e, "insights_watermark_delay_seconds"), 4)
      assert.strictEqual(valueOf(e, "insights_partition_lag_messages", { topic: "clicks", partition: "0" }), 5)
      assert.strictEqual(valueOf(e, "insights_partition_position", { topic: "clicks", partition: "0" }), 100)
      assert.strictEqual(valueOf(e, "insights_sink_rows_total"), 60)
      assert.strictEqual(valueOf(e, "insights_sink_batches_total"), 3)
      assert.strictEqual(valueOf(e, "insights_sink_batch_duration_seconds_count"), 3)
      assert.closeTo(valueOf(e, "insights_sink_batch_duration_seconds_sum")!, 0.06, 1e-9)
      assert.strictEqual(valueOf(e, "insights_sink_batch_duration_seconds_bucket", { le: "0.01" }), 1)
      assert.strictEqual(valueOf(e, "insights_sink_batch_duration_seconds_bucket", { le: "0.025" }), 2)
      assert.strictEqual(valueOf(e, "insights_sink_batch_duration_seconds_bucket", { le: "0.05" }), 3)
      assert.strictEqual(valueOf(e, "process_resident_memory_bytes"), 100_000_000)
      assert.strictEqual(valueOf(e, "nodejs_heap_size_used_bytes"), 40_000_000)
      assert.strictEqual(valueOf(e, "process_cpu_seconds_total"), 2.5)
      assert.strictEqual(e.types.get("insights_sink_batch_duration_seconds"), "histogram")
      assert.strictEqual(e.types.get("insights_events_in_total"), "counter")
      assert.strictEqual(e.types.get("insights_state_users"), "gauge")
      for (const [name, type] of e.types) if (type === "counter") assert.match(name, /_total$/)

      const families = parseFamilies(text)
      assert.isAtLeast(families.length, 8)
      const histogram = families.find((f) => f.name === "insights_sink_batch_duration_seconds")
      assert.strictEqual(histogram?.type, "HISTOGRAM")
      const lint = promtool(text)
      if (lint !== undefined) assert.deepStrictEqual(lint, [])
    })))

  it.effect("counters grow by what was added since the last scrape, never twice", () =>
    isolated(Effect.gen(function*() {
      const stats = statsWithTraffic()
      const scraper = Metrics.make(stats, probe)
      yield* scrape(scraper, T0)
      yield* scrape(scraper, T0 + 1_000) // nothing new
      stats.recordRead(records("clicks", 0, 100, 50), T0 + 1_500)
      stats.job("attribution").count("ingest_errors", 1)
      stats.job("attribution").count("rollups_written", 4) // a counter the scraper has no name for
      stats.job("attribution").recordSinkWrite(5, 40, T0 + 1_800)
      setWatermark(stats, T0 + 1_000)
      const e = checkExposition(yield* scrape(scraper, T0 + 2_000))
      assert.deepStrictEqual(e.problems, [])
      assert.strictEqual(valueOf(e, "insights_events_in_total", { topic: "clicks" }), 150)
      assert.strictEqual(valueOf(e, "insights_ingest_errors_total"), 3)
      assert.strictEqual(valueOf(e, "insights_job_rollups_written_total"), 4)
      assert.strictEqual(valueOf(e, "insights_sink_rows_total"), 65)
      assert.strictEqual(valueOf(e, "insights_sink_batch_duration_seconds_count"), 4)
      assert.closeTo(valueOf(e, "insights_sink_batch_duration_seconds_sum")!, 0.1, 1e-9)
      assert.strictEqual(valueOf(e, "insights_watermark_delay_seconds"), 1)
      assert.strictEqual(valueOf(e, "insights_watermark_timestamp_seconds"), (T0 + 1_000) / 1000)
    })))

  it.effect("observes at most the 100 latencies EngineStats keeps; the batch counter stays exact", () =>
    isolated(Effect.gen(function*() {
      const stats = new EngineStats()
      const scraper = Metrics.make(stats, probe)
      const empty = checkExposition(yield* scrape(scraper, T0))
      assert.deepStrictEqual(empty.problems, [])
      assert.strictEqual(valueOf(empty, "insights_sink_batch_duration_seconds_count"), 0) // the family exists before the first batch
      assert.isUndefined(valueOf(empty, "insights_watermark_delay_seconds")) // no watermark yet: no made-up delay
      for (let i = 0; i < 150; i++) stats.job("attribution").recordSinkWrite(1, 2, T0 + i)
      const e = checkExposition(yield* scrape(scraper, T0 + 1_000))
      assert.strictEqual(valueOf(e, "insights_sink_batches_total"), 150)
      assert.strictEqual(valueOf(e, "insights_sink_batch_duration_seconds_count"), 100)
      assert.strictEqual(valueOf(e, "insights_sink_batch_duration_seconds_bucket", { le: "0.001" }), 0)
      assert.strictEqual(valueOf(e, "insights_sink_batch_duration_seconds_bucket", { le: "0.0025" }), 100)
    })))

  it.effect("exports the recommender's figures: model size, update rate and latency, what the sink wrote", () =>
    isolated(Effect.gen(function*() {
      const stats = new EngineStats()
      const figures: Record<string, number | undefined> = {
        tasks: 2, users: 1_234, products: 456, neighbourLinks: 7_890, updates: 10_000, updates_per_s: 120.5,
        update_p50_ms: 0.02, update_p99_ms: 0.5, lists_written: 900, rows_written: 8_700, snapshots: 3, snapshot_bytes: 65_536,
        failed_writes: 1, last_write_ms: 12, last_snapshot_at: T0 - 30_000
      }
      stats.job("recommendations").report = () => figures
      const scraper = Metrics.make(stats, probe)
      const text = yield* scrape(scraper, T0)
      const e = checkExposition(text)
      assert.deepStrictEqual(e.problems, [])
      const expected: Record<string, readonly [type: string, value: number]> = {
        insights_recommendation_tasks: ["gauge", 2],
        insights_recommendation_users: ["gauge", 1_234],
        insights_recommendation_updates_total: ["counter", 10_000],
        insights_recommendation_model_products: ["gauge", 456],
        insights_recommendation_model_neighbour_links: ["gauge", 7_890],
        insights_recommendation_lists_written_total: ["counter", 900],
        insights_recommendation_rows_written_total: ["counter", 8_700],
        insights_recommendation_snapshots_total: ["counter", 3],
        insights_recommendation_snapshot_bytes_total: ["counter", 65_536],
        insights_recommendation_failed_writes_total: ["counter", 1],
        insights_recommendation_last_write_duration_seconds: ["gauge", 0.012],
        insights_recommendation_last_snapshot_timestamp_seconds: ["gauge", (T0 - 30_000) / 1000]
      }
      for (const [name, [type, value]] of Object.entries(expected)) {
        assert.strictEqual(e.types.get(name), type, `${name} is a ${type}`)
        assert.match(text, new RegExp(`^# HELP ${name} \\S`, "m"), `${name} has help text`)
        assert.closeTo(valueOf(e, name)!, value, 1e-9, name)
      }
      assert.strictEqual(e.types.get("insights_recommendation_update_seconds"), "gauge")
      assert.match(text, /^# HELP insights_recommendation_update_seconds \S/m)
      assert.closeTo(valueOf(e, "insights_recommendation_update_seconds", { quantile: "0.5" })!, 0.00002, 1e-12)
      assert.closeTo(valueOf(e, "insights_recommendation_update_seconds", { quantile: "0.99" })!, 0.0005, 1e-12)
      const families = parseFamilies(text)
      assert.strictEqual(families.find((f) => f.name === "insights_recommendation_update_seconds")?.metrics.length, 2)
      const lint = promtool(text)
      if (lint !== undefined) assert.deepStrictEqual(lint, [])

      // a task handed to another member takes its updates along: the counter does not go back, and counts growth from there
      figures["updates"] = 4_000
      figures["lists_written"] = 950
      const dropped = checkExposition(yield* scrape(scraper, T0 + 1_000))
      assert.deepStrictEqual(dropped.problems, [])
      assert.strictEqual(valueOf(dropped, "insights_recommendation_updates_total"), 10_000)
      assert.strictEqual(valueOf(dropped, "insights_recommendation_lists_written_total"), 950)
      figures["updates"] = 4_500
      const grown = checkExposition(yield* scrape(scraper, T0 + 2_000))
      assert.strictEqual(valueOf(grown, "insights_recommendation_updates_total"), 10_500)
    })))

  it.effect("no recommender, no recommendation families", () =>
    isolated(Effect.gen(function*() {
      const e = checkExposition(yield* scrape(Metrics.make(new EngineStats(), probe), T0))
      assert.deepStrictEqual(e.problems, [])
      assert.isFalse([...e.types.keys()].some((name) => name.startsWith("insights_recommendation_")))
    })))

  it.effect("a recommender before its first update and snapshot: zeros, but no made-up latency or snapshot time", () =>
    isolated(Effect.gen(function*() {
      const stats = new EngineStats()
      stats.job("recommendations").report = () => ({
        tasks: 1, users: 0, products: 0, neighbourLinks: 0, updates: 0, updates_per_s: 0, update_p50_ms: undefined, update_p99_ms: undefined,
        lists_written: 0, rows_written: 0, snapshots: 0, snapshot_bytes: 0, failed_writes: 0, last_write_ms: 0, last_snapshot_at: undefined
      })
      const e = checkExposition(yield* scrape(Metrics.make(stats, probe), T0))
      assert.deepStrictEqual(e.problems, [])
      assert.strictEqual(valueOf(e, "insights_recommendation_users"), 0)
      assert.strictEqual(valueOf(e, "insights_recommendation_updates_total"), 0)
      assert.isUndefined(valueOf(e, "insights_recommendation_update_seconds"))
      assert.isUndefined(valueOf(e, "insights_recommendation_last_snapshot_timestamp_seconds"))
      assert.isUndefined(valueOf(e, "insights_recommendation_last_write_duration_seconds"))
      parseFamilies(e.text)
    })))

  it.effect("escapes label values that are not plain words", () =>
    isolated(Effect.gen(function*() {
      const stats = new EngineStats()
      const topic = "odd \"topic\"\\with\nnewline"
      stats.partition({ topic, partition: 0 })
      stats.recordRead(records(topic, 0, 0, 3), T0)
      const text = yield* scrape(Metrics.make(stats, probe), T0)
      const e = checkExposition(text)
      assert.deepStrictEqual(e.problems, [])
      assert.strictEqual(valueOf(e, "insights_events_in_total", { topic }), 3)
      parseFamilies(text)
    })))
})
