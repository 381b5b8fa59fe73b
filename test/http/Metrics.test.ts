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
