/**
 * Drives the attribution job through the real runner with explicit event times (STYLE §7):
 * messages go in through an in-memory source, processing time moves only with `TestClock`,
 * and every batch the sink would have written is kept for assertions.
 */
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import type { AttributionOutput } from "../../src/jobs/Attribution.ts"
import { EngineStats } from "../../src/engine/EngineStats.ts"
import * as Runner from "../../src/engine/Runner.ts"
import type { SinkBatch } from "../../src/engine/Topology.ts"
import * as MemorySource from "../../src/sources/MemorySource.ts"
import { attributionTopology } from "./MemoryTopology.ts"

export const W = 15_000
export const I = 30_000
export const A = 3_600_000

export const clickJson = (id: string, user: string, ts: number, product: string | null = "p1") =>
  JSON.stringify({ click_id: id, user_id: user, product_id: product, source: "Google", click_timestamp: new Date(ts).toISOString() })

export const checkoutJson = (id: string, user: string, ts: number, product = "p1") =>
  JSON.stringify({
    checkout_id: id, user_id: user, product_id: product, quantity: 1, shipping_cost: 1, discount: 0,
    payment_method: "Visa", payment_status: "Success", payment_description: "None", checkout_timestamp: new Date(ts).toISOString()
  })

/**
 * `align`: wait for empty partitions that are not idle before releasing others (the runner's
 * default for unbounded sources). Off by default here, so that watermark tests see every
 * message processed as soon as it is sent. `reportsCaughtUp`: a source like Kafka's, whose
 * quiet partitions are idle only once it reports them caught up after I (`caughtUp`).
 */
export const makeDriver = (options: {
  readonly partitions?: ReadonlyArray<readonly [string, number]>
  readonly align?: boolean
  readonly reportsCaughtUp?: boolean
  /** runs before the sink keeps write number `n` (from 0): a sink that is away while it waits */
  readonly beforeWrite?: (n: number) => Effect.Effect<void>
  /** the runner's `sinkQueueCapacity` */
  readonly sinkQueueCapacity?: number
} = {}) =>
  Effect.gen(function*() {
    const memory = yield* MemorySource.make("memory", { reportsCaughtUp: options.reportsCaughtUp === true })
    const batches: Array<SinkBatch<AttributionOutput>> = []
    const stats = new EngineStats()
    const offsets = new Map<string, number>()
    let writes = 0
    const fiber = yield* Effect.forkChild(Runner.run({
      source: memory.source,
      topology: attributionTopology((batch) =>
        Effect.andThen(options.beforeWrite?.(writes++) ?? Effect.void, Effect.sync(() => { batches.push(batch) }))),
      // TestClock starts at 1970: event times of 2026 would all be "too far ahead"
      options: {
        maxFutureMs: Infinity, outOfOrdernessMs: W, idleTimeoutMs: I, flushIntervalMs: 0, tickMs: 1_000,
        ...(options.align ? {} : { alignmentBufferLimit: 0 }),
        ...(options.sinkQueueCapacity === undefined ? {} : { sinkQueueCapacity: options.sinkQueueCapacity })
      },
      stats
    }), { startImmediately: true })
    const partitions = options.partitions ?? [["clicks", 0], ["checkouts", 0]]
    yield* memory.send({ _tag: "Assigned", partitions: partitions.map(([topic, partition]) => ({ topic, partition })) })

    /** Delivers one message; `backlog`: the partition has more waiting to be read. */
    const send = (topic: string, value: string, opts: { partition?: number; backlog?: boolean } = {}) =>
      Effect.gen(function*() {
        const partition = opts.partition ?? 0
        const id = `${topic}/${partition}`
        const offset = offsets.get(id) ?? 0
        offsets.set(id, offset + 1)
        yield* memory.send({ _tag: "Records", topic, partition, records: [{ topic, partition, offset, key: null, value }], backlog: opts.backlog ?? false })
        yield* settle
      })

    /** Lets the runner and sink fibers catch up without moving the clock. */
    const settle = Effect.gen(function*() {
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow
    })

    const advance = (millis: number) => Effect.andThen(TestClock.adjust(millis), settle)

    /** The source's report that `topic`'s partition has nothing left to read (an empty batch). */
    const caughtUp = (topic: string, partition = 0) =>
      Effect.andThen(memory.send({ _tag: "Records", topic, partition, records: [], backlog: false }), settle)

    const outputs = () => batches.flatMap((b) => b.outputs)
    const joined = () => outputs().flatMap((o) => o._tag === "Joined" ? [[o.probe.id, o.match?.id ?? null, o.late] as const] : [])
    const lateClicks = () => outputs().flatMap((o) => o._tag === "LateBuild" ? [o.build.id] : [])
    const rejected = () => batches.flatMap((b) => b.rejected)

    return {
      send, caughtUp, advance, settle, stats, batches, outputs, joined, lateClicks, rejected, memory,
      /** how many writes the sink has been asked for */
      writes: () => writes,
      watermark: () => stats.watermark,
      stop: Fiber.interrupt(fiber)
    }
  })
