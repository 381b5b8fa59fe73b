/**
 * Exactly-once restarts (SPEC §5): stop the job anywhere, start it again from the positions
 * the sink committed with its rows, re-send the input from the committed restart offsets, and
 * the "tables" end up exactly as after an uninterrupted run. The sink here is an in-memory
 * model of PgSink's upserts; the restore hooks read it the way AttributionRestore reads
 * PostgreSQL.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import type { AttributionInput, AttributionOutput } from "../../src/jobs/Attribution.ts"
import * as Runner from "../../src/engine/Runner.ts"
import type { Recall, SinkBatch } from "../../src/engine/Topology.ts"
import type { CommittedPosition, PartitionRef } from "../../src/engine/Source.ts"
import * as MemorySource from "../../src/sources/MemorySource.ts"
import { checkoutJson, clickJson } from "../support/JobDriver.ts"
import { attributionTopology } from "../support/MemoryTopology.ts"

const T = Date.parse("2026-11-23T12:00:00Z")

/** What PgSink keeps: one row per checkout (on-time wins over late), late events, positions. */
class Tables {
  readonly rows = new Map<string, { click: string | null; late: boolean }>()
  readonly late = new Set<string>()
  readonly positions = new Map<string, CommittedPosition>()
  write(batch: SinkBatch<AttributionOutput>) {
    for (const o of batch.outputs) {
      if (o._tag === "LateBuild") { this.late.add(`clicks/${o.build.id}`); continue }
      const prev = this.rows.get(o.probe.id)
      if (prev === undefined || prev.late || !o.late) this.rows.set(o.probe.id, { click: o.match?.id ?? null, late: o.late })
      if (o.late) this.late.add(`checkouts/${o.probe.id}`)
    }
    for (const p of batch.positions) {
      this.positions.set(`${p.topic}/${p.partition}`, {
        topic: p.topic, partition: p.partition, nextOffset: p.nextOffset, restartOffset: p.restartOffset ?? p.nextOffset,
        maxEventTime: p.maxEventTime ?? -Infinity, watermark: p.watermark
      })
    }
  }
  restore(): Recall<AttributionInput, never> {
    return {
      positions: (refs: ReadonlyArray<PartitionRef>) =>
        Effect.succeed(refs.flatMap((r) => { const p = this.positions.get(`${r.topic}/${r.partition}`); return p ? [p] : [] })),
      recall: (inputs) => Effect.succeed(inputs.map((i): AttributionInput | undefined =>
        i.side === "build" ? (this.late.has(`clicks/${i.element.id}`) ? undefined : { side: "restore-build", element: i.element })
        : i.side === "probe" ? { side: "restore-probe", element: i.element, written: this.rows.has(i.element.id) }
        : i))
    }
  }
  snapshot() {
    return { rows: [...this.rows].sort(), late: [...this.late].sort() }
  }
}

/** A deterministic stream of both topics, in order, with some late and duplicate events. */
const input = (): Array<{ topic: "clicks" | "checkouts"; value: string }> => {
  const out: Array<{ topic: "clicks" | "checkouts"; value: string }> = []
  let t = T
  for (let i = 0; i < 400; i++) {
    t += 7_000 + (i % 5) * 3_000
    const user = `u${i % 23}`, product = `p${i % 4}`
    out.push({ topic: "clicks", value: clickJson(`c${i}`, user, t - (i % 3) * 4_000, i % 11 === 0 ? null : product) })
    if (i % 3 === 0) out.push({ topic: "checkouts", value: checkoutJson(`k${i}`, user, t + 2_000, product) })
    if (i % 37 === 0) out.push({ topic: "clicks", value: clickJson(`late${i}`, user, t - 40 * 60_000, product) })
    if (i % 41 === 0) out.push({ topic: "checkouts", value: checkoutJson(`klate${i}`, user, t - 30 * 60_000, product) })
    if (i % 13 === 0 && i > 0) out.push({ topic: "clicks", value: clickJson(`c${i - 1}`, `u${(i - 1) % 23}`, t - 9_000, product) })
  }
  return out
}

/** Runs the job over `messages[from…]` per partition; stops after `stopAfter` messages or at the end, idle. */
const runOnce = (tables: Tables, messages: ReturnType<typeof input>, stopAfter: number | undefined, restore: boolean) =>
  Effect.gen(function*() {
    const memory = yield* MemorySource.make("memory")
    const fiber = yield* Effect.forkChild(Runner.run({
      source: memory.source,
      topology: attributionTopology((b) => Effect.sync(() => tables.write(b)), restore ? tables.restore() : undefined),
      options: { maxFutureMs: Infinity, outOfOrdernessMs: 15_000, idleTimeoutMs: 30_000, flushIntervalMs: 0, flushRows: 7, tickMs: 1_000 }
    }), { startImmediately: true })
    const settle = Effect.gen(function*() { for (let i = 0; i < 30; i++) yield* Effect.yieldNow })
    yield* memory.send({ _tag: "Assigned", partitions: [{ topic: "clicks", partition: 0 }, { topic: "checkouts", partition: 0 }] })
    yield* settle
    const start = { clicks: restore ? tables.positions.get("clicks/0")?.restartOffset ?? 0 : 0, checkouts: restore ? tables.positions.get("checkouts/0")?.restartOffset ?? 0 : 0 }
    const offsets = { clicks: 0, checkouts: 0 }
    let sent = 0
    for (const m of messages) {
      const offset = offsets[m.topic]++
      if (offset < start[m.topic]) continue
      if (stopAfter !== undefined && sent >= stopAfter) break
      yield* memory.send({ _tag: "Records", topic: m.topic, partition: 0, records: [{ topic: m.topic, partition: 0, offset, key: null, value: m.value }], backlog: true })
      yield* settle
      sent++
    }
    if (stopAfter === undefined) {
      for (const topic of ["clicks", "checkouts"] as const) {
        yield* memory.send({ _tag: "Records", topic, partition: 0, records: [], backlog: false })
      }
      yield* settle
      yield* TestClock.adjust(60_000)
      yield* settle
    }
    yield* Fiber.interrupt(fiber)
  })

describe("restart from committed positions", () => {
  it.effect("gives the same tables as an uninterrupted run, wherever it stops (and twice)", () =>
    Effect.gen(function*() {
      const messages = input()
      const reference = new Tables()
      yield* runOnce(reference, messages, undefined, false)
      const expected = reference.snapshot()
      assert.isAbove(expected.rows.length, 100)
      assert.isAbove(expected.late.length, 10)
      assert.isAbove(expected.rows.filter(([, r]) => r.click !== null).length, 50)

      for (const stopAt of [1, 17, 150, 333, 521, 700]) {
        const tables = new Tables()
        yield* runOnce(tables, messages, stopAt, false)
        yield* runOnce(tables, messages, Math.floor(stopAt / 2) + 40, true) // a second crash
        yield* runOnce(tables, messages, undefined, true)
        assert.deepStrictEqual(tables.snapshot(), expected, `stopped after ${stopAt} messages`)
      }
      // a crash right after a restart's assignment, before anything was re-read: the
      // positions written then must still send the next restart back far enough
      for (const stopAt of [150, 521]) {
        const tables = new Tables()
        yield* runOnce(tables, messages, stopAt, false)
        yield* runOnce(tables, messages, 0, true)
        yield* runOnce(tables, messages, 3, true)
        yield* runOnce(tables, messages, undefined, true)
        assert.deepStrictEqual(tables.snapshot(), expected, `stopped after ${stopAt}, then at once after restarting`)
      }
    }))
})
