/**
 * A sink that cannot write pauses reading (SPEC §2's idleness is about the source, not about
 * the engine): processing time the engine spends waiting for a full sink queue is time it did
 * not read, so it must not make a partition idle. Otherwise, when the sink comes back, every
 * partition looks idle, the watermark jumps to the largest event time seen, and the events
 * that were waiting to be read are judged late (seen under PostgreSQL's positions table
 * locked for 15 s: checkouts attributed to a later click than their first).
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { checkoutJson, clickJson, I, makeDriver } from "../support/JobDriver.ts"

const T = 1_000_000_000

describe("back-pressure from a sink", () => {
  it.effect("processing time spent waiting for the sink does not make partitions idle: nothing read after it is late", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      // the first write waits for the gate (PostgreSQL locked); the rest go through
      const d = yield* makeDriver({ beforeWrite: (n) => n === 0 ? Deferred.await(gate) : Effect.void, sinkQueueCapacity: 1 })
      // the checkouts partition has read further in event time than the clicks partition
      yield* d.send("checkouts", checkoutJson("k0", "u0", T + 5_000))
      yield* d.send("clicks", clickJson("c0", "u0", T))
      // the sink holds the first flush; the second waits for room: the engine reads no more
      assert.strictEqual(d.writes(), 1)
      assert.strictEqual(d.stats.eventsTotal, 2)
      // the sink is away for much longer than I; the engine reads nothing meanwhile
      for (let i = 0; i < 5; i++) yield* d.advance(I)
      yield* Deferred.succeed(gate, undefined)
      yield* d.settle
      yield* d.advance(1_000) // a tick: the engine looks at idleness before the next records come
      assert.isBelow(d.watermark(), T, "the watermark did not jump while nothing was read")
      // what was waiting to be read: u1's first click, then its checkout
      yield* d.send("clicks", clickJson("c1", "u1", T + 1_000))
      yield* d.send("checkouts", checkoutJson("k1", "u1", T + 6_000))
      // now both go quiet for good: idle after I, the watermark passes everything
      yield* d.advance(I + 1_000)
      assert.deepStrictEqual(d.lateClicks(), [])
      assert.deepStrictEqual(d.joined().find((j) => j[0] === "k1"), ["k1", "c1", false])
      yield* d.stop
    }))
})
