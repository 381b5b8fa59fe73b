/**
 * A sink that cannot write pauses reading (SPEC §2's idleness is about the source, not about
 * the engine): processing time the engine spends waiting for a full sink queue is time it did
 * not read, so it must not make a partition idle. Otherwise, when the sink comes back, every
 * partition looks idle, the watermark jumps to the largest event time seen, and the events
 * that were waiting to be read are judged late (seen under PostgreSQL's positions table
 * locked for 15 s: checkouts attributed to a later click than their first).
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import type { AttributionOutput } from "../../src/jobs/Attribution.ts"
import { EngineStats } from "../../src/engine/EngineStats.ts"
import * as Runner from "../../src/engine/Runner.ts"
import type { SinkBatch } from "../../src/engine/Topology.ts"
import * as MemorySource from "../../src/sources/MemorySource.ts"
import { checkoutJson, clickJson, I, W } from "../support/JobDriver.ts"
import { attributionTopology } from "../support/MemoryTopology.ts"

const T = 1_000_000_000

describe("back-pressure from a sink", () => {
  it.effect("processing time spent waiting for the sink does not make partitions idle: nothing read after it is late", () =>
    Effect.gen(function*() {
      const memory = yield* MemorySource.make()
      const gate = yield* Deferred.make<void>()
      const batches: Array<SinkBatch<AttributionOutput>> = []
      let writes = 0
      const stats = new EngineStats()
      const fiber = yield* Effect.forkChild(Runner.run({
        source: memory.source,
        // the first write waits for the gate (PostgreSQL locked); the rest go through
        topology: attributionTopology((batch) => Effect.gen(function*() {
          if (writes++ === 0) yield* Deferred.await(gate)
          batches.push(batch)
        })),
        options: { maxFutureMs: Infinity, outOfOrdernessMs: W, idleTimeoutMs: I, flushIntervalMs: 0, tickMs: 1_000, sinkQueueCapacity: 1, alignmentBufferLimit: 0 },
        stats
      }), { startImmediately: true })
      const settle = Effect.gen(function*() {
        for (let i = 0; i < 20; i++) yield* Effect.yieldNow
      })
      const offsets = new Map<string, number>()
      const send = (topic: string, value: string) =>
        Effect.gen(function*() {
          const offset = offsets.get(topic) ?? 0
          offsets.set(topic, offset + 1)
          yield* memory.send({ _tag: "Records", topic, partition: 0, records: [{ topic, partition: 0, offset, key: null, value }], backlog: false })
          yield* settle
        })
      yield* memory.send({ _tag: "Assigned", partitions: [{ topic: "clicks", partition: 0 }, { topic: "checkouts", partition: 0 }] })
      // the checkouts partition has read further in event time than the clicks partition
      yield* send("checkouts", checkoutJson("k0", "u0", T + 5_000))
      yield* send("clicks", clickJson("c0", "u0", T))
      // the sink holds the first flush; the second waits for room: the engine reads no more
      assert.strictEqual(writes, 1)
      assert.strictEqual(stats.eventsTotal, 2)
      // the sink is away for much longer than I; the engine reads nothing meanwhile
      for (let i = 0; i < 5; i++) {
        yield* TestClock.adjust(I)
        yield* settle
      }
      yield* Deferred.succeed(gate, undefined)
      yield* settle
      yield* TestClock.adjust(1_000) // a tick: the engine looks at idleness before the next records come
      yield* settle
      assert.isBelow(stats.watermark, T, "the watermark did not jump while nothing was read")
      // what was waiting to be read: u1's first click, then its checkout
      yield* send("clicks", clickJson("c1", "u1", T + 1_000))
      yield* send("checkouts", checkoutJson("k1", "u1", T + 6_000))
      // now both go quiet for good: idle after I, the watermark passes everything
      yield* TestClock.adjust(I + 1_000)
      yield* settle
      const outputs = batches.flatMap((b) => b.outputs)
      const lateClicks = outputs.flatMap((o) => o._tag === "LateBuild" ? [o.build.id] : [])
      const joined = outputs.flatMap((o) => o._tag === "Joined" ? [[o.probe.id, o.match?.id ?? null, o.late] as const] : [])
      assert.deepStrictEqual(lateClicks, [])
      assert.deepStrictEqual(joined.find((j) => j[0] === "k1"), ["k1", "c1", false])
      yield* Fiber.interrupt(fiber)
    }))
})
