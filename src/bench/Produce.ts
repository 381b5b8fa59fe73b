/**
 * The bench's producer: the store's simulator to Kafka through the engine's own producer
 * (`KafkaClient.openProducer`: murmur2 on the user key, acks from all in-sync replicas), in
 * requests under the broker's 1 MB limit. `backfill` produces a count as fast as the broker
 * takes it (event time = the clock at production) and counts, independently of the engine's
 * decoder, the distinct valid checkouts it sent: what shop.checkout_attribution must hold
 * once the daemon has read them.
 */
import { Clock, Effect } from "effect"
import { makeProducts, makeUsers } from "../generator/Catalog.ts"
import { type GeneratedMessage, makeSimulator, type Simulator } from "../generator/Shoppers.ts"
import { defaultData } from "../generator/writeData.ts"
import { openProducer, type OutgoingMessage, produceRequests } from "../sources/KafkaClient.ts"

export interface BenchTopics {
  readonly clicks: string
  readonly checkouts: string
}

export const simulator = (seed: number): Simulator =>
  makeSimulator({ seed, users: makeUsers(defaultData.userSeed, defaultData.userCount), products: makeProducts(defaultData.productSeed, defaultData.productCount) })


const id = (v: unknown): string | undefined => typeof v === "string" && v !== "" ? v : typeof v === "number" && Number.isInteger(v) ? String(v) : undefined

/** A checkout's id when the message is a valid checkout (SPEC §1's required fields), read with JSON.parse alone. */
export const validCheckoutId = (value: string): string | undefined => {
  try {
    const v = JSON.parse(value) as Record<string, unknown>
    const ts = typeof v["checkout_timestamp"] === "string" ? Date.parse(v["checkout_timestamp"]) : NaN
    const kid = id(v["checkout_id"])
    return kid !== undefined && id(v["user_id"]) !== undefined && id(v["product_id"]) !== undefined && !Number.isNaN(ts) ? kid : undefined
  } catch {
    return undefined
  }
}

export const toOutgoing = (topics: BenchTopics, m: GeneratedMessage, now: number): OutgoingMessage =>
  ({ topic: m.topic === "clicks" ? topics.clicks : topics.checkouts, key: m.key, value: m.value, timestamp: now })

export interface Backfill {
  readonly messages: number
  readonly clicks: number
  readonly checkouts: number
  readonly distinctValidCheckouts: number
  /** what every checkout id of this production starts with (the simulator's ids carry its seed) */
  readonly checkoutIdPrefix: string
  readonly ms: number
}

/** Produces `count` messages to `topics` (created with `partitions` when missing) as fast as the broker takes them. */
export const backfill = (brokers: ReadonlyArray<string>, topics: BenchTopics, partitions: number, count: number, seed: number) =>
  Effect.gen(function*() {
    const producer = yield* openProducer({ brokers, clientId: "insights-bench", topics: [topics.clicks, topics.checkouts], partitions })
    const sim = simulator(seed)
    const ids = new Set<string>()
    let clicks = 0
    let prefix = ""
    const started = yield* Clock.currentTimeMillis
    for (let sent = 0; sent < count;) {
      const now = yield* Clock.currentTimeMillis
      const n = Math.min(20_000, count - sent)
      const batch: Array<OutgoingMessage> = new Array(n)
      for (let i = 0; i < n; i++) {
        const m = sim.next(now)
        if (m.topic === "clicks") clicks++
        else {
          const k = validCheckoutId(m.value)
          if (k !== undefined) {
            ids.add(k)
            if (prefix === "") prefix = k.slice(0, k.lastIndexOf("-") + 1)
          }
        }
        batch[i] = toOutgoing(topics, m, now)
      }
      yield* Effect.forEach(produceRequests(batch), producer.send, { concurrency: 4, discard: true })
      sent += n
    }
    return { messages: count, clicks, checkouts: count - clicks, distinctValidCheckouts: ids.size, checkoutIdPrefix: prefix, ms: (yield* Clock.currentTimeMillis) - started } satisfies Backfill
  }).pipe(Effect.scoped)
