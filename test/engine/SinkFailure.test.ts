/**
 * A sink that fails for good fails the job with its error: the runner never waits forever on
 * a queue nobody drains, and a stop after the failure still completes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as Runner from "../../src/engine/Runner.ts"
import * as MemorySource from "../../src/sources/MemorySource.ts"
import { clickJson } from "../support/JobDriver.ts"
import { attributionTopology } from "../support/MemoryTopology.ts"

class Broken extends Error {}

describe("sink failure", () => {
  it.effect("fails the job with the sink's error, however much input keeps coming", () =>
    Effect.gen(function*() {
      const memory = yield* MemorySource.make()
      let writes = 0
      const fiber = yield* Effect.forkChild(Runner.run({
        source: memory.source,
        topology: attributionTopology(() => Effect.suspend(() => { writes++; return Effect.fail(new Broken("disk on fire")) })),
        options: { maxFutureMs: Infinity, flushIntervalMs: 0, sinkQueueCapacity: 1, tickMs: 1_000 }
      }), { startImmediately: true })
      yield* memory.send({ _tag: "Assigned", partitions: [{ topic: "clicks", partition: 0 }] })
      for (let i = 0; i < 50; i++) {
        yield* memory.send({ _tag: "Records", topic: "clicks", partition: 0, records: [{ topic: "clicks", partition: 0, offset: i, key: null, value: clickJson(`c${i}`, "u1", 1_000_000 + i) }], backlog: true })
        yield* Effect.yieldNow
      }
      yield* TestClock.adjust(5_000)
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit))
      assert.include(String(Exit.isFailure(exit) ? exit.cause : ""), "disk on fire")
      assert.strictEqual(writes, 1)
    }))

  it.effect("fails the job even when the input goes quiet right after the failure", () =>
    Effect.gen(function*() {
      const memory = yield* MemorySource.make()
      let writes = 0
      const fiber = yield* Effect.forkChild(Runner.run({
        source: memory.source,
        topology: attributionTopology(() => Effect.suspend(() => { writes++; return Effect.fail(new Broken("disk on fire")) })),
        options: { flushIntervalMs: 0, tickMs: 1_000 }
      }), { startImmediately: true })
      yield* memory.send({ _tag: "Assigned", partitions: [{ topic: "clicks", partition: 0 }] })
      // one batch, then nothing: no later flush is there to find the queue full
      yield* memory.send({ _tag: "Records", topic: "clicks", partition: 0, records: [{ topic: "clicks", partition: 0, offset: 0, key: null, value: clickJson("c0", "u1", 1_000_000) }], backlog: false })
      for (let i = 0; i < 10; i++) {
        yield* TestClock.adjust(1_000)
        yield* Effect.yieldNow
      }
      const exit = fiber.pollUnsafe()
      assert.isDefined(exit, "the job is still running with a dead sink")
      assert.isTrue(Exit.isFailure(exit!))
      assert.include(String(Exit.isFailure(exit!) ? exit!.cause : ""), "disk on fire")
      assert.strictEqual(writes, 1)
    }))
})
