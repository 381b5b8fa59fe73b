import { assert, describe, it } from "@effect/vitest"
import { EngineStats } from "../../src/engine/EngineStats.ts"
import { statusSnapshot } from "../../src/http/Status.ts"

const T0 = Date.parse("2026-03-01T12:00:00Z")

describe("Status", () => {
  it("has no recommendations object when the recommender does not run", () => {
    assert.isNull(statusSnapshot(new EngineStats(), T0).recommendations)
  })

  it("shows the recommender's report: users, update rate and latency, model size, writes, snapshots with the last one's age", () => {
    const stats = new EngineStats()
    stats.job("recommendations").report = () => ({
      tasks: 2, users: 1_234, products: 456, neighbourLinks: 7_890, updates: 10_000, updates_per_s: 120.5,
      update_p50_ms: 0.02, update_p99_ms: 0.5, lists_written: 900, rows_written: 8_700, snapshots: 3, snapshot_bytes: 65_536,
      failed_writes: 1, last_write_ms: 12, last_snapshot_at: T0 - 30_000
    })
    assert.deepStrictEqual(statusSnapshot(stats, T0).recommendations, {
      tasks: 2,
      users: 1_234,
      updates: 10_000,
      updatesPerSecond: 120.5,
      updateMs: { p50: 0.02, p99: 0.5 },
      model: { products: 456, neighbourLinks: 7_890, users: 1_234 },
      listsWritten: 900,
      rowsWritten: 8_700,
      lastWriteMs: 12,
      snapshots: { count: 3, bytes: 65_536, lastAt: "2026-03-01T11:59:30.000Z", lastAgeSeconds: 30 },
      failedWrites: 1
    })
  })

  it("before the first update and snapshot: zeros, and null where there is nothing to tell", () => {
    const stats = new EngineStats()
    stats.job("recommendations").report = () => ({ tasks: 1, users: 0, update_p50_ms: undefined, last_write_ms: 0, last_snapshot_at: undefined })
    const r = statusSnapshot(stats, T0).recommendations!
    assert.deepStrictEqual(r.updateMs, { p50: null, p99: null })
    assert.deepStrictEqual(r.snapshots, { count: 0, bytes: 0, lastAt: null, lastAgeSeconds: null })
    assert.strictEqual(r.updatesPerSecond, 0)
    assert.strictEqual(r.failedWrites, 0)
    assert.isNull(r.lastWriteMs)
  })
})
