import { assert, describe, it } from "@effect/vitest"
import { formatTimestamp } from "../../src/domain/Timestamp.ts"

// formatTimestamp caches by minute; it must be toISOString exactly, whatever
// order the minutes come in (cache hits, evictions, slot collisions).
const agrees = (t: number) => assert.strictEqual(formatTimestamp(t), new Date(t).toISOString(), String(t))

describe("formatTimestamp", () => {
  it("writes what toISOString writes at the edges", () => {
    const edges = [
      0, -1, 1, -1.5, 1.5, 0.999, -0.999, 59_999, 60_000, 60_001, -59_999, -60_000, -60_001,
      Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1), Date.UTC(2024, 1, 29, 12, 0, 0, 5),
      Date.UTC(9999, 11, 31, 23, 59, 59, 999), Date.UTC(10000, 0, 1), Date.UTC(0, 0, 1) - 1, -62135596800000,
      8.64e15, -8.64e15, 8.64e15 - 0.5, -8.64e15 + 0.5
    ]
    for (const t of edges) agrees(t)
    // a second pass reads every prefix back from the cache
    for (const t of edges) agrees(t)
  })

  it("writes what toISOString writes for random instants, clustered and scattered", () => {
    let seed = 12345
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648
    const base = Date.UTC(2026, 10, 23)
    for (let i = 0; i < 20_000; i++) agrees(base + Math.floor(random() * 3_600_000)) // an hour: the stream's case
    for (let i = 0; i < 20_000; i++) agrees(Math.floor((random() * 2 - 1) * 8.64e15)) // anywhere: every slot collides
    // minutes 256 apart share a slot: alternate them so each call evicts the other
    for (let i = 0; i < 1000; i++) agrees(base + (i % 2) * 256 * 60_000 + i)
  })

  it("throws toISOString's RangeError for NaN and out-of-range instants", () => {
    for (const t of [Number.NaN, 8.64e15 + 1, -8.64e15 - 1, Infinity, -Infinity]) {
      assert.throws(() => formatTimestamp(t), RangeError)
    }
  })
})
