/**
 * `npm run bench [-- flags]`: measures the engine on this machine and prints ONE JSON object
 * (stdout; progress lines go to stderr). Every figure is measured in the run; the keys are
 * issue 12's (README, "Performance"). One module per measurement:
 *
 *   Backlog.ts        the generated backlog, whole and split by key into one share per worker
 *   Anchors.ts        JSON.parse and our decode of every message
 *   Engine.ts         the engine over the backlog (engineWorker.ts: one process per share / one over all)
 *   HeldClicks.ts     heap per click held in attribution's keyed state, and that process's peak RSS
 *   ConsumeCeiling.ts the Kafka client alone draining the bench's topics (consumeWorker.ts per member)
 *   SinkCeiling.ts    the PostgreSQL write path alone (PgSink.write, batches of SINK_FLUSH_ROWS)
 *   EndToEnd.ts       `node dist/main.js` draining the produced events into PostgreSQL; start time
 *   Latency.ts        production → row visible, at a fixed live rate
 *   RecsApi.ts        (extras) the recommendations API at load; the model's memory (recs/measureModel.ts)
 *
 * Kafka: KAFKA_BROKERS, or a broker of its own (scripts/kafka.sh). PostgreSQL:
 * TEST_DATABASE_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres); scratch
 * databases are created and dropped.
 */
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { load as loadConfig } from "../config.ts"
import { measureModel } from "../recs/measureModel.ts"
import { parseBrokers } from "../sources/KafkaClient.ts"
import { measureAnchors } from "./Anchors.ts"
import { generateBacklog } from "./Backlog.ts"
import { openBroker } from "./Broker.ts"
import { log, round3 } from "./Common.ts"
import { deleteTopics, measureConsumeCeiling, topicEnds } from "./ConsumeCeiling.ts"
import { measureEndToEnd, verifyRows } from "./EndToEnd.ts"
import { measureEngine } from "./Engine.ts"
import { measureHeldClicks } from "./HeldClicks.ts"
import { measureLatency } from "./Latency.ts"
import { parseOptions } from "./Options.ts"
import { backfill } from "./Produce.ts"
import { measureRecsApi } from "./RecsApi.ts"
import { createScratch, openPoller } from "./Scratch.ts"
import { measureSinkCeiling } from "./SinkCeiling.ts"
import { targets } from "./Targets.ts"
import { quietKafkajsTimerWarning } from "../Warnings.ts"

quietKafkajsTimerWarning() // as the daemon does: kafkajs's never-throttled queue timer is not news

// stdout carries the JSON alone: Effect's logger (console.log) and any other console output go to stderr
console.log = console.error
console.info = console.error

const main = async () => {
  const began = performance.now()
  const opts = parseOptions(process.argv.slice(2))
  const config = await Effect.runPromise(loadConfig)
  const W = config.outOfOrdernessMs
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "insights-bench-"))
  try {
    log(`generating ${opts.events} events in ${opts.workers} shares`)
    const backlog = generateBacklog(dir, opts.events, opts.workers)
    const anchors = measureAnchors(backlog)
    const engine = await measureEngine(backlog, opts.rounds, dir)
    const held = await measureHeldClicks({ clicks: opts.heldClicks, outOfOrdernessMs: W, windowMs: config.windowMs })

    const broker = await openBroker()
    const brokers = parseBrokers(broker.brokers)
    const suffix = randomBytes(4).toString("hex")
    const topics = { clicks: `bench-clicks-${suffix}`, checkouts: `bench-checkouts-${suffix}` }
    try {
      log(`producing ${opts.e2eEvents} events to ${topics.clicks}, ${topics.checkouts} (${opts.partitions} partitions) on ${broker.brokers}`)
      const produced = await Effect.runPromise(backfill(brokers, topics, opts.partitions, opts.e2eEvents, 1))
      const ends = await topicEnds(brokers, [topics.clicks, topics.checkouts])
      const consume = await measureConsumeCeiling(brokers, topics, opts.partitions, opts.workers)

      const sinkDb = await createScratch("sink")
      const sink = await measureSinkCeiling(sinkDb, opts.sinkRows, opts.workers, config.flushRows).finally(() => sinkDb.drop())

      const e2eDb = await createScratch("e2e", { users: backlog.usersCsv, products: backlog.productsCsv })
      const poller = openPoller(e2eDb.url)
      let e2e, latency, rows
      try {
        const run = await measureEndToEnd({
          brokers: broker.brokers, topics, partitions: opts.partitions, groupId: `insights-bench-${suffix}`, databaseUrl: e2eDb.url,
          lakeDir: path.join(dir, "e2e-lake"), lakeFlushMs: opts.lakeFlushMs, recsSnapshotMs: opts.recsSnapshotMs, usersCsv: backlog.usersCsv, productsCsv: backlog.productsCsv,
          ends, produced
        }, poller, 120_000 + opts.e2eEvents / 10)
        e2e = run.result
        try {
          latency = await measureLatency({
            brokers, topics, partitions: opts.partitions, rate: opts.latencyRate, seconds: opts.latencySeconds,
            warmupMs: 5_000, tailMs: W + 2_000, waitMs: W + 30_000, pollMs: 25, seed: 2
          }, poller)
          rows = await verifyRows(poller, produced, config.idleTimeoutMs + W + 10_000)
        } finally {
          const code = await run.daemon.stop()
          if (code !== 0) log(`the daemon exited with ${code} on SIGTERM: ${run.daemon.output().slice(-2_000)}`)
        }
      } finally {
        await poller.close()
        await e2eDb.drop()
      }

      let extras: Record<string, unknown> | undefined
      if (opts.extras) {
        log(`extras: the recommender model (${opts.recsUsers} users), the recommendations API at load`)
        const recommender_model = measureModel({ users: opts.recsUsers, products: 10_000 })
        const apiDb = await createScratch("api")
        const recs_api = await measureRecsApi(apiDb.url, { rate: opts.latencyRate, requests: opts.apiRequests }).finally(() => apiDb.drop())
        extras = { recommender_model, recs_api }
      }

      const e2eCeiling = Math.round(Math.min(consume.events_per_s, sink.rows_per_s / rows.rows_per_event))
      const figures = {
        engine_events_per_s: engine.all.events_per_s,
        engine_events_per_s_one_worker: engine.one.events_per_s,
        lake_tap_cost: engine.lake_tap_cost,
        recs_cost: engine.recs_cost,
        json_parse_events_per_s: anchors.json_parse_events_per_s,
        decode_events_per_s: anchors.decode_events_per_s,
        consume_ceiling_events_per_s: consume.events_per_s,
        sink_ceiling_rows_per_s: sink.rows_per_s,
        e2e_events_per_s: e2e.events_per_s,
        e2e_rows_verified: rows.rows_verified,
        rows_per_event: rows.rows_per_event,
        e2e_ceiling_events_per_s: e2eCeiling,
        e2e_vs_ceiling: round3(e2e.events_per_s / e2eCeiling),
        start_ms: e2e.start_ms,
        p50_latency_ms: latency.p50_ms,
        p99_latency_ms: latency.p99_ms,
        watermark_delay_ms: W,
        bytes_per_held_click: held.bytes_per_held_click,
        peak_rss_mb: held.peak_rss_mb
      }
      const result = {
        ...figures,
        targets: targets(figures),
        machine: { cores: os.availableParallelism(), node: process.version, platform: `${process.platform} ${os.release()} ${process.arch}`, cpu_model: os.cpus()[0]?.model ?? "unknown" },
        workers: opts.workers,
        params: {
          events: opts.events, e2e_events: opts.e2eEvents, latency_rate: opts.latencyRate, latency_seconds: opts.latencySeconds,
          held_clicks: opts.heldClicks, sink_rows: opts.sinkRows, partitions: opts.partitions, rounds: opts.rounds,
          e2e_lake_flush_ms: opts.lakeFlushMs, e2e_recs_snapshot_ms: opts.recsSnapshotMs, sink_flush_rows: config.flushRows, smoke: opts.smoke, broker: broker.origin
        },
        detail: {
          engine: { all: engine.all, one_worker: engine.one, runs: engine.runs },
          held_clicks: held,
          produced,
          consume_ceiling: consume,
          sink_ceiling: sink,
          e2e: { ...e2e, ...rows },
          latency
        },
        ...(extras === undefined ? {} : { extras }),
        elapsed_s: Math.round(performance.now() - began) / 1000
      }
      process.stdout.write(JSON.stringify(result, null, 2) + "\n")
      if (!rows.rows_verified) {
        throw new Error(`end to end: ${rows.rows.checkout_attribution} checkout_attribution rows, expected ${rows.rows.expected_checkouts} (one per distinct valid checkout produced)`)
      }
    } finally {
      await deleteTopics(brokers, [topics.clicks, topics.checkouts])
      await broker.stop()
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`)
    process.exit(1)
  }
)
