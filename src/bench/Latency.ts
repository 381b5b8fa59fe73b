/**
 * Live latency: while the daemon runs caught up, the simulator produces at a fixed rate with
 * event time = the wall clock at production; every checkout's production time is kept, and
 * shop.checkout_attribution is polled every `pollMs` for the checkouts not seen yet. A
 * checkout's latency is from its production to the end of the first query that returned its
 * row. Only the checkouts of the `seconds` after a warm-up count (the first live events pass
 * the watermark over the drained backlog's last checkouts, whose rows are written then); production goes on for `tailMs` more
 * so that the watermark keeps moving past them (a stopped producer would leave the last W of
 * them waiting for the idle timeout, which is not the live case).
 */
import * as fs from "node:fs"
import { Clock, Effect } from "effect"
import { log, percentile, sleep, wallNow } from "./Common.ts"
import { openProducer, type OutgoingMessage, produceRequests } from "../sources/KafkaClient.ts"
import { type BenchTopics, simulator, toOutgoing, validCheckoutId } from "./Produce.ts"
import type { Poller } from "./Scratch.ts"

export interface Latency {
  readonly p50_ms: number
  readonly p99_ms: number
  readonly max_ms: number
  readonly checkouts: number
  /** checkouts whose row was not seen within the wait (counted with the time waited) */
  readonly unseen: number
  readonly rate: number
  readonly seconds: number
  readonly produced: number
  readonly poll_ms: number
  readonly warmup_ms: number
}

export interface LatencySetup {
  readonly brokers: ReadonlyArray<string>
  readonly topics: BenchTopics
  readonly partitions: number
  readonly rate: number
  readonly seconds: number
  /** production before the measured seconds */
  readonly warmupMs: number
  readonly tailMs: number
  /** after production, how long to wait for rows not seen yet */
  readonly waitMs: number
  readonly pollMs: number
  /** differs from the backfill's seed: checkout ids carry the seed */
  readonly seed: number
}

const TICK_MS = 10

export const measureLatency = async (setup: LatencySetup, db: Poller): Promise<Latency> => {
  const pending = new Map<string, number>()
  // BENCH_LATENCY_TRACE=<file>: every measured checkout's production time and latency, as CSV
  const traceFile = process.env["BENCH_LATENCY_TRACE"]
  const trace: Array<string> | undefined = traceFile === undefined ? undefined : []
  const latencies: Array<number> = []
  let producing = true
  let produced = 0
  const measuredMs = setup.seconds * 1000

  const produce = Effect.gen(function*() {
    const producer = yield* openProducer({ brokers: setup.brokers, clientId: "insights-bench-live", topics: [setup.topics.clicks, setup.topics.checkouts], partitions: setup.partitions })
    const sim = simulator(setup.seed)
    const startedAt = yield* Clock.currentTimeMillis
    const endAt = startedAt + setup.warmupMs + measuredMs + setup.tailMs
    for (;;) {
      const now = yield* Clock.currentTimeMillis
      if (now >= endAt) return
      const due = Math.floor(((now - startedAt) * setup.rate) / 1000) - produced
      if (due <= 0) {
        yield* Effect.sleep(Math.max(1, Math.min(TICK_MS, Math.ceil(startedAt + ((produced + 1) * 1000) / setup.rate - now))))
        continue
      }
      const n = Math.min(due, 20_000)
      const batch: Array<OutgoingMessage> = new Array(n)
      const measured = now - startedAt >= setup.warmupMs && now - startedAt < setup.warmupMs + measuredMs
      for (let i = 0; i < n; i++) {
        const m = sim.next(now)
        if (m.topic === "checkouts" && measured) {
          const id = validCheckoutId(m.value)
          if (id !== undefined) pending.set(id, now)
        }
        batch[i] = toOutgoing(setup.topics, m, now)
      }
      yield* Effect.forEach(produceRequests(batch), producer.send, { concurrency: 4, discard: true })
      produced += n
    }
  }).pipe(Effect.scoped)

  const poll = async () => {
    let deadline = Infinity
    for (;;) {
      if (!producing && deadline === Infinity) deadline = wallNow() + setup.waitMs
      if (!producing && (pending.size === 0 || wallNow() > deadline)) return
      // the oldest checkout not seen yet (the map is in production order): every row at or after
      // its event time, through the time index. Asking for the pending ids (~9 000 at 5 000
      // events/s, W = 15 s) every poll had PostgreSQL join a 9 000-element array 40 times a
      // second, on the cores the daemon and its sink run on
      const oldest = pending.values().next().value
      if (oldest !== undefined) {
        const rows = await db.query<{ checkout_id: string }>(
          "SELECT checkout_id FROM shop.checkout_attribution WHERE checkout_timestamp >= to_timestamp($1::double precision / 1000)", [oldest - 1])
        const seenAt = wallNow()
        for (const r of rows) {
          const at = pending.get(r.checkout_id)
          if (at === undefined) continue
          latencies.push(seenAt - at)
          trace?.push(`${at},${seenAt - at}`)
          pending.delete(r.checkout_id)
        }
      }
      await sleep(setup.pollMs)
    }
  }

  const polling = poll()
  try {
    await Effect.runPromise(produce)
  } finally {
    producing = false
  }
  await polling
  if (traceFile !== undefined && trace !== undefined) fs.writeFileSync(traceFile, "produced_at,latency_ms\n" + trace.join("\n") + "\n")
  const unseen = pending.size
  const now = wallNow()
  for (const at of pending.values()) latencies.push(now - at)
  const sorted = latencies.sort((a, b) => a - b)
  const result = {
    p50_ms: Math.round(percentile(sorted, 0.5)),
    p99_ms: Math.round(percentile(sorted, 0.99)),
    max_ms: Math.round(sorted[sorted.length - 1] ?? NaN),
    checkouts: sorted.length,
    unseen,
    rate: setup.rate,
    seconds: setup.seconds,
    produced,
    poll_ms: setup.pollMs,
    warmup_ms: setup.warmupMs
  }
  log(`latency at ${setup.rate} events/s: p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms over ${result.checkouts} checkouts (${unseen} unseen)`)
  return result
}
