/**
 * The aligner on its own: records of several partitions released by event time, each
 * partition's order kept, and released records let go of even by a lane that never empties.
 */
import { assert, describe, it } from "@effect/vitest"
import { InputAligner } from "../../src/engine/InputAligner.ts"

interface Rec {
  readonly id: string
  readonly ts: number | undefined
}

const aligner = (partitions: number) => {
  const a = new InputAligner<Rec>((r) => r.ts)
  for (let i = 0; i < partitions; i++) a.addPartition()
  const released: Array<string> = []
  const ended: Array<number> = []
  const drain = (mustWait: (p: number) => boolean = () => true) => a.drain((_, r) => released.push(r.id), (p) => ended.push(p), mustWait)
  return { a, released, ended, drain }
}

describe("InputAligner", () => {
  it("releases the oldest head first, ties to the partition added first, and waits for an empty partition", () => {
    const { a, released, drain } = aligner(2)
    a.push(0, [{ id: "a1", ts: 10 }, { id: "a2", ts: 30 }])
    a.push(1, [{ id: "b1", ts: 10 }, { id: "b2", ts: 20 }])
    drain()
    assert.deepStrictEqual(released, ["a1", "b1", "b2"], "a2 waits: partition 1 is empty and may still bring something older")
    assert.strictEqual(a.size, 1)
    a.end(1)
    drain()
    assert.deepStrictEqual(released, ["a1", "b1", "b2", "a2"])
  })

  it("lets an undecodable record (no time) through as soon as it heads its partition", () => {
    const { a, released, drain } = aligner(2)
    a.push(0, [{ id: "bad", ts: undefined }, { id: "a1", ts: 50 }])
    a.push(1, [{ id: "b1", ts: 10 }])
    drain()
    assert.deepStrictEqual(released, ["bad", "b1"])
  })

  it("reports each partition's end once, after its last record", () => {
    const { a, released, ended, drain } = aligner(2)
    a.push(0, [{ id: "a1", ts: 1 }])
    a.end(0)
    a.end(1)
    drain()
    drain()
    assert.deepStrictEqual(released, ["a1"])
    assert.deepStrictEqual(ended.sort(), [0, 1])
  })

  it("lets go of released records of a partition that is always ahead and never empties", () => {
    const { a, released, drain } = aligner(2)
    // partition 1 is a batch ahead in event time all along: its lane never empties
    let t0 = 0, t1 = 0
    const batch = (p: number, n: number, from: number) => Array.from({ length: n }, (_, i) => ({ id: `${p}-${from + i}`, ts: from + i }))
    a.push(1, batch(1, 500, t1)); t1 += 500
    for (let round = 0; round < 100; round++) {
      a.push(0, batch(0, 500, t0)); t0 += 500
      a.push(1, batch(1, 500, t1)); t1 += 500
      drain()
    }
    assert.isAbove(released.length, 99_000 - 1)
    assert.strictEqual(a.buffered(1), 500 + 1, "partition 1's batch ahead still waits (and the record at partition 0's last time)")
    assert.isAtMost(a.retained(1), 4 * 1_024, "its released records are not all kept")
    // every record was released once, in each partition's order
    const of1 = released.filter((id) => id.startsWith("1-")).map((id) => Number(id.slice(2)))
    assert.deepStrictEqual(of1, Array.from({ length: of1.length }, (_, i) => i))
  })
})
