/**
 * `insights generate --to kafka`: the synthetic store's clicks and checkouts produced to
 * Kafka, keyed by user id (murmur2, as the Java clients partition, so a user's clicks and
 * checkouts land on the same partition number of both topics), acks from all in-sync
 * replicas, uncompressed. Event time is the clock at production. Same seed, same sequence
 * of messages.
 *
 * `--rate N` produces N messages per second of the clock, in a batch every tick;
 * `--rate max` produces as fast as the broker takes them (a backfill): large batches, a few
 * requests in flight (one connection per broker keeps them in order). Without `--count` or
 * `--duration`, a live rate runs until SIGINT/SIGTERM.
 */
import { Clock, Console, Effect } from "effect"
import type { Scope } from "effect"
import { makeProducts, makeUsers } from "../generator/Catalog.ts"
import { makeSimulator } from "../generator/Shoppers.ts"
import { defaultData } from "../generator/writeData.ts"
import { openProducer, type OutgoingMessage, produceRequests } from "../sources/KafkaClient.ts"
import type { SourceError } from "../sources/SourceError.ts"
import type { GenerateOptions } from "./Generate.ts"
import * as Progress from "./Progress.ts"

export interface KafkaTarget {
  readonly brokers: ReadonlyArray<string>
  readonly topics: { readonly clicks: string; readonly checkouts: string }
  /** partitions of a topic created because it is missing */
  readonly partitions: number
}

export interface Produced {
  readonly messages: number
  readonly clicks: number
  readonly checkouts: number
  readonly elapsedMs: number
}

/** Messages per batch at `--rate max`, and the most a live tick sends at once. */
const MAX_BATCH = 20_000
/** Requests in flight at `--rate max`. */
const IN_FLIGHT = 4
/** A live rate produces at least this often. */
const TICK_MS = 50

const rateText = (n: number, ms: number) => ms > 0 ? `${Math.round((n / ms) * 1000).toLocaleString("en-US")} msg/s` : "–"

/** Produces to Kafka until `count` messages, `durationMs`, or interruption. */
export const toKafka = (options: GenerateOptions, target: KafkaTarget): Effect.Effect<Produced, SourceError, Scope.Scope> =>
  Effect.gen(function*() {
    const topics = [target.topics.clicks, target.topics.checkouts]
    const producer = yield* openProducer({ brokers: target.brokers, clientId: "insights-generate", topics, partitions: target.partitions })
    const partitions = producer.partitions
    const simulator = makeSimulator({
      seed: options.seed,
      users: makeUsers(defaultData.userSeed, defaultData.userCount),
      products: makeProducts(defaultData.productSeed, defaultData.productCount),
      format: options.format
    })

    const startedAt = yield* Clock.currentTimeMillis
    // a live rate produces exactly rate × duration; `max` produces for the duration
    const limit = Math.min(
      options.count ?? Infinity,
      options.rate !== "max" && options.durationMs !== undefined ? Math.round((options.rate * options.durationMs) / 1000) : Infinity
    )
    const endAt = options.rate === "max" && options.durationMs !== undefined ? startedAt + options.durationMs : Infinity
    let sent = 0
    let clicks = 0

    const summary = Effect.gen(function*() {
      const elapsedMs = (yield* Clock.currentTimeMillis) - startedAt
      yield* Console.error(
        `produced ${sent.toLocaleString("en-US")} messages (${clicks.toLocaleString("en-US")} clicks, ` +
          `${(sent - clicks).toLocaleString("en-US")} checkouts) to ${topics.join(", ")} (${partitions} partitions) ` +
          `in ${(elapsedMs / 1000).toFixed(1)} s: ${rateText(sent, elapsedMs)}`
      )
      return { messages: sent, clicks, checkouts: sent - clicks, elapsedMs }
    })

    const loop = (progress: Progress.Progress) => Effect.gen(function*() {
      for (;;) {
        const now = yield* Clock.currentTimeMillis
        if (sent >= limit || now >= endAt) return
        const due = options.rate === "max" ? MAX_BATCH : Math.floor(((now - startedAt) * options.rate) / 1000) - sent
        const n = Math.min(due, limit - sent, MAX_BATCH)
        if (n <= 0) {
          const rate = options.rate as number
          const nextDueAt = startedAt + Math.ceil(((sent + 1) * 1000) / rate)
          yield* Effect.sleep(Math.max(1, Math.min(TICK_MS, nextDueAt - now, endAt - now)))
          continue
        }
        const batch: Array<OutgoingMessage> = new Array(n)
        for (let i = 0; i < n; i++) {
          const m = simulator.next(now)
          if (m.topic === "clicks") clicks++
          batch[i] = { topic: m.topic === "clicks" ? target.topics.clicks : target.topics.checkouts, key: m.key, value: m.value, timestamp: now }
        }
        yield* Effect.forEach(produceRequests(batch), producer.send, { concurrency: IN_FLIGHT, discard: true })
        sent += n
        yield* progress.update(sent)
      }
    })

    const total = Number.isFinite(limit) ? limit : undefined
    yield* Effect.gen(function*() {
      yield* loop(yield* Progress.make({ label: "generate", unit: "messages", total }))
    }).pipe(
      Effect.scoped, // the bar ends before the summary line
      Effect.onInterrupt(() => Effect.ignore(summary))
    )
    return yield* summary
  })
