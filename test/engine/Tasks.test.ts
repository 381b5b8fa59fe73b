/**
 * Tasks through the real runner (TestClock, in-memory source and sink): a task owns its
 * partitions' watermark, state and positions. A restored watermark moves its own task only;
 * a revoked task writes nothing more; a task a sink finds fenced is dropped, and the other
 * tasks' work in the same batch is written without it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as Runner from "../../src/engine/Runner.ts"
import type { CommittedPosition, PartitionRef } from "../../src/engine/Source.ts"
import type { Recall, SinkBatch, SinkResult } from "../../src/engine/Topology.ts"
import type { AttributionInput, AttributionOutput } from "../../src/jobs/Attribution.ts"
import * as MemorySource from "../../src/sources/MemorySource.ts"
import { checkoutJson, clickJson } from "../support/JobDriver.ts"
import { attributionTopology } from "../support/MemoryTopology.ts"

const T = Date.parse("2026-11-23T12:00:00Z")
const I = 30_000
const refs = (...partitions: Array<number>): Array<PartitionRef> =>
  partitions.flatMap((partition) => [{ topic: "clicks", partition }, { topic: "checkouts", partition }])

const settle = Effect.gen(function*() { for (let i = 0; i < 30; i++) yield* Effect.yieldNow })

const start = (options: {
  readonly write?: (batch: SinkBatch<AttributionOutput>) => SinkResult | void
  readonly recall?: Recall<AttributionInput, never>
}) =>
  Effect.gen(function*() {
    const memory = yield* MemorySource.make()
    const batches: Array<SinkBatch<AttributionOutput>> = []
    const topology = attributionTopology((b) => Effect.sync(() => { batches.push(b); return options.write?.(b) }), options.recall)
    const fiber = yield* Effect.forkChild(Runner.run({
      source: memory.source, topology, options: { maxFutureMs: Infinity, idleTimeoutMs: I, flushIntervalMs: 0, tickMs: 1_000 }
    }), { startImmediately: true })
    let offset = 0
    const send = (topic: string, partition: number, value: string) =>
      Effect.andThen(memory.send({ _tag: "Records", topic, partition, records: [{ topic, partition, offset: offset++, key: null, value }], backlog: false }), settle)
    const joined = () => batches.flatMap((b) => b.outputs).flatMap((o) => o._tag === "Joined" ? [[o.probe.id, o.match?.id ?? null, o.late] as const] : [])
    const lateClicks = () => batches.flatMap((b) => b.outputs).flatMap((o) => o._tag === "LateBuild" ? [o.build.id] : [])
    /** as the Kafka source does: Assigned, then an empty batch per partition saying it is caught up */
    const assign = (partitions: ReadonlyArray<PartitionRef>) =>
      Effect.gen(function*() {
        yield* memory.send({ _tag: "Assigned", partitions })
        for (const r of partitions) yield* memory.send({ _tag: "Records", topic: r.topic, partition: r.partition, records: [], backlog: false })
        yield* settle
      })
    return { memory, batches, send, assign, joined, lateClicks, topology, stop: Fiber.interrupt(fiber) }
  })

describe("tasks (TestClock)", () => {
  it.effect("a restored watermark belongs to its task: a gained partition far ahead makes no other task's event late", () =>
    Effect.gen(function*() {
      const ahead = T + 10 * 3_600_000
      const recall: Recall<AttributionInput, never> = {
        positions: (wanted) => Effect.succeed(wanted.filter((r) => r.partition === 1).map((r): CommittedPosition => ({
          topic: r.topic, partition: r.partition, nextOffset: 0, restartOffset: 0, maxEventTime: ahead, watermark: ahead
        }))),
        recall: (inputs) => Effect.succeed(inputs)
      }
      const d = yield* start({ recall })
      yield* d.assign(refs(0, 1))
      yield* d.send("clicks", 0, clickJson("c0", "u0", T))
      yield* d.send("checkouts", 0, checkoutJson("k0", "u0", T + 1_000))
      yield* d.send("clicks", 1, clickJson("c1", "u1", T))
      yield* TestClock.adjust(I)
      yield* settle
      assert.deepStrictEqual(d.lateClicks(), ["c1"], "behind its own task's restored watermark")
      assert.deepStrictEqual(d.joined(), [["k0", "c0", false]], "task 0 judged by its own clock")
      yield* d.stop
    }))

  it.effect("a revoked task writes nothing more: its pending checkout and its positions are dropped", () =>
    Effect.gen(function*() {
      const d = yield* start({})
      yield* d.assign(refs(0, 1))
      yield* d.send("checkouts", 1, checkoutJson("k1", "u1", T + 1_000))
      yield* d.send("checkouts", 0, checkoutJson("k0", "u0", T + 1_000))
      const before = d.batches.length
      yield* d.memory.send({ _tag: "Revoked", partitions: refs(1) })
      yield* settle
      yield* TestClock.adjust(I)
      yield* settle
      assert.deepStrictEqual(d.joined(), [["k0", null, false]], "k1 was pending in the revoked task: never written by this member")
      const afterRevoke = d.batches.slice(before)
      assert.isAbove(afterRevoke.length, 0)
      for (const b of afterRevoke) {
        assert.deepStrictEqual(b.positions.filter((p) => p.partition === 1), [])
        assert.deepStrictEqual(b.claims.filter((c) => c.task === 1), [])
      }
      yield* d.stop
    }))

  it.effect("a fenced task is dropped; the other tasks' work of the same batch is written again without it", () =>
    Effect.gen(function*() {
      let fenceOnce = true
      const d = yield* start({
        write: (b) => {
          if (fenceOnce && b.claims.some((c) => c.task === 1)) {
            fenceOnce = false
            return { fenced: [1] }
          }
        }
      })
      yield* d.assign(refs(0, 1))
      yield* d.send("clicks", 0, clickJson("c0", "u0", T))
      yield* d.send("clicks", 1, clickJson("c1", "u1", T))
      yield* TestClock.adjust(I)
      yield* settle
      const fencedAt = d.batches.findIndex((b) => b.claims.some((c) => c.task === 1))
      assert.isAtLeast(fencedAt, 0)
      const after = d.batches.slice(fencedAt + 1)
      assert.isTrue(after.some((b) => b.positions.some((p) => p.partition === 0 && p.topic === "clicks")), "task 0's positions written after the fence")
      for (const b of after) assert.deepStrictEqual(b.claims.filter((c) => c.task === 1), [], "nothing of task 1 after it was fenced")
      yield* d.send("checkouts", 1, checkoutJson("k1", "u1", T + 2_000))
      yield* d.send("checkouts", 0, checkoutJson("k0", "u0", T + 2_000))
      yield* TestClock.adjust(I)
      yield* settle
      assert.deepStrictEqual(d.joined(), [["k0", "c0", false]])
      yield* d.stop
    }))
})
