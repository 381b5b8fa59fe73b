/**
 * A stateless tap in a task: it sees each input as the task reads it (before alignment holds
 * it back), in offset order per partition, and its position is the read position; the keyed
 * jobs beside it see the same inputs only once they are released. Inputs re-read from before
 * the tap's committed position are not handed to it again.
 */
import { assert, describe, it } from "vitest"
import { Effect } from "effect"
import type { KeyedOperator } from "../../src/engine/KeyedState.ts"
import type { Envelope, PartitionRef } from "../../src/engine/Source.ts"
import { Task } from "../../src/engine/Task.ts"
import type { AnyJob, Decoded } from "../../src/engine/Topology.ts"

const T = Date.parse("2026-11-23T12:00:00Z")
const discard = { write: () => Effect.succeed({ fenced: [] }) }

/** each input is one message's offset; the value is "key@ts" */
const decode = (e: Envelope): Decoded<number> => {
  const [key, ts] = e.value.split("@")
  return { key: key!, ts: Number(ts), event: e.offset, message: e }
}

const collecting = (stateless: boolean) => {
  const seen: Array<string> = []
  const operator: KeyedOperator<null, string, string> = {
    ...(stateless ? { stateless: true as const } : {}),
    create: () => null,
    onElement: (_s, input) => { seen.push(input) },
    onTimer: () => {},
    isEmpty: () => true,
    measure: () => [0, 0]
  }
  const job: AnyJob<number, never> = {
    name: stateless ? "tap" : "keyed",
    input: (_offset, message) => `${message.partition}:${message.offset}`,
    operator,
    retainMs: stateless ? -Infinity : 0,
    sink: discard
  }
  return { seen, job }
}

const records = (ref: PartitionRef, from: number, values: ReadonlyArray<string>) => ({
  _tag: "Records" as const, topic: ref.topic, partition: ref.partition, backlog: false,
  records: values.map((value, i): Envelope => ({ topic: ref.topic, partition: ref.partition, offset: from + i, key: null, value }))
})

describe("a stateless tap in a task", () => {
  it("sees inputs as they are read, its position the read one, while alignment holds them from the keyed job", () => {
    const keyed = collecting(false), tap = collecting(true)
    const task = new Task(0, { task: 0, epoch: 1 }, [keyed.job, tap.job], { outOfOrdernessMs: 0, idleTimeoutMs: 30_000, bounded: true, alignmentBufferLimit: 1_000 })
    const a = { topic: "clicks", partition: 0 }, b = { topic: "checkouts", partition: 0 }
    task.addLane(a, "test", T)
    task.addLane(b, "test", T)
    task.accept(records(a, 0, [`u1@${T}`, `u2@${T + 1}`, `u1@${T + 2}`]), T, decode)
    task.release(T)
    task.advance(T)
    assert.deepStrictEqual(tap.seen, ["0:0", "0:1", "0:2"], "the tap saw every record as it was read")
    assert.deepStrictEqual(keyed.seen, [], "a replay waits for the other partition before it releases anything")
    const [keyedOut, tapOut] = task.flush(T)
    const next = (positions: ReadonlyArray<{ topic: string; nextOffset: number }>, topic: string) => positions.find((p) => p.topic === topic)?.nextOffset
    assert.strictEqual(next(tapOut!.positions, "clicks"), 3, "the tap's position: everything read")
    assert.strictEqual(next(keyedOut!.positions, "clicks"), 0, "the keyed job's: nothing released yet")

    task.end(b)
    task.release(T)
    task.advance(T)
    assert.deepStrictEqual(keyed.seen, ["0:0", "0:1", "0:2"])
    assert.deepStrictEqual(tap.seen, ["0:0", "0:1", "0:2"], "released inputs do not reach the tap a second time")
    assert.strictEqual(next(task.flush(T)[0]!.positions, "clicks"), 3)
  })

  it("skips inputs re-read from before its committed position", () => {
    const keyed = collecting(false), tap = collecting(true)
    const task = new Task(0, { task: 0, epoch: 2 }, [keyed.job, tap.job], { outOfOrdernessMs: 0, idleTimeoutMs: 30_000, bounded: false, alignmentBufferLimit: 1_000 })
    const a = { topic: "clicks", partition: 0 }
    task.addLane(a, "test", T)
    task.restore(1, { ...a, nextOffset: 2, restartOffset: 2, maxEventTime: -Infinity, watermark: -Infinity })
    task.accept(records(a, 0, [`u1@${T}`, `u2@${T + 1}`, `u1@${T + 2}`, `u3@${T + 3}`]), T, decode)
    assert.deepStrictEqual(tap.seen, ["0:2", "0:3"], "offsets 0 and 1 were in the tap's sink before the restart")
    assert.strictEqual(task.flush(T)[1]!.positions[0]?.nextOffset, 4)
  })

  it("hands a message's bytes to the taps, and drops them once they have seen it", () => {
    const keyed = collecting(false)
    const bytesSeen: Array<string | undefined> = []
    const tap: AnyJob<number, never> = {
      ...collecting(true).job,
      input: (_offset, message) => message,
      operator: {
        stateless: true, create: () => null, onTimer: () => {}, isEmpty: () => true, measure: () => [0, 0],
        onElement: (_s: null, message: Envelope) => { bytesSeen.push(message.bytes === undefined ? undefined : Buffer.from(message.bytes).toString()) }
      }
    }
    const task = new Task(0, { task: 0, epoch: 1 }, [keyed.job, tap], { outOfOrdernessMs: 0, idleTimeoutMs: 30_000, bounded: false, alignmentBufferLimit: 1_000 })
    const a = { topic: "clicks", partition: 0 }
    task.addLane(a, "test", T)
    const batch = records(a, 0, [`u1@${T}`, `u2@${T + 1}`])
    for (const e of batch.records) (e as { bytes?: Uint8Array }).bytes = Buffer.from(e.value)
    task.accept(batch, T, decode)
    assert.deepStrictEqual(bytesSeen, [`u1@${T}`, `u2@${T + 1}`])
    assert.deepStrictEqual(batch.records.map((e) => e.bytes), [undefined, undefined], "a message kept for later pins no read buffer")
    task.release(T)
    task.advance(T)
    assert.deepStrictEqual(keyed.seen, ["0:0", "0:1"], "the keyed job still gets every message")
  })
})
