/**
 * SPEC §2–3 on the pure task step, through the TopologyTestDriver: messages piped in with
 * explicit event times, the wall clock moved only for idleness, alignment on as in
 * production, outputs and per-key state read after each step.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { defaultSlotMs, heldCount } from "../../src/engine/IntervalJoin.ts"
import { TopologyTestDriver } from "../../src/engine/TopologyTestDriver.ts"
import type { AttributionOutput, AttributionState } from "../../src/jobs/Attribution.ts"
import { checkoutJson, clickJson } from "../support/JobDriver.ts"
import { A, attributionTopology } from "../support/MemoryTopology.ts"

/** The clicks a key's attribution state holds (none without a state). */
const heldOf = (state: AttributionState | undefined): number => state === undefined ? 0 : heldCount(state)

const T = Date.parse("2026-11-23T12:00:00Z")
const W = 15_000
const I = 30_000

const driver = (options: { maxFutureMs?: number } = {}) =>
  new TopologyTestDriver(attributionTopology(() => Effect.void), {
    partitions: [{ topic: "clicks", partition: 0 }, { topic: "checkouts", partition: 0 }],
    outOfOrdernessMs: W,
    idleTimeoutMs: I,
    wallClock: T,
    ...options
  })

type Driver = ReturnType<typeof driver>
const joined = (d: Driver) =>
  d.outputs<AttributionOutput>("attribution").flatMap((o) => o._tag === "Joined" ? [[o.probe.id, o.match?.id ?? null, o.late] as const] : [])
const lateClicks = (d: Driver) =>
  d.outputs<AttributionOutput>("attribution").flatMap((o) => o._tag === "LateBuild" ? [o.build.id] : [])

describe("TopologyTestDriver: SPEC §2–3 on the task step", () => {
  it("holds a click until the checkouts partition has delivered or is idle (alignment as in production)", () => {
    const d = driver()
    d.pipe("clicks", clickJson("c1", "u1", T))
    assert.strictEqual(d.watermark, -Infinity, "the checkouts partition never delivered: nothing is released")
    assert.isUndefined(d.state("attribution", "u1"))
    d.advanceWallClock(I)
    assert.strictEqual(d.watermark, T, "checkouts idle, clicks idle: the largest event time")
    assert.strictEqual(heldOf(d.state<AttributionState>("attribution", "u1")), 1)
  })

  it("writes an on-time checkout only once the watermark reaches its time, attributed to the first click", () => {
    const d = driver()
    d.pipe("clicks", clickJson("c1", "u1", T, null), { backlog: true })
    d.pipe("checkouts", checkoutJson("k1", "u1", T + 60_000), { backlog: true })
    d.pipe("clicks", clickJson("c3", "u3", T + 60_000 + W + 1), { backlog: true })
    d.pipe("checkouts", checkoutJson("k9", "u3", T + 60_000 + W + 1), { backlog: true })
    assert.isBelow(d.watermark, T + 60_000)
    assert.deepStrictEqual(joined(d), [], "the watermark has not reached the checkout")
    d.pipe("clicks", clickJson("c4", "u4", T + 60_000 + W + 2), { backlog: true }) // releases k9: both partitions past k1
    assert.strictEqual(d.watermark, T + 60_000 + 1)
    assert.deepStrictEqual(joined(d), [["k1", "c1", false]])
  })

  it("matches both window edges (k.ts − A and k.ts) and not 1 ms outside; ties go to the smallest click id", () => {
    const d = driver()
    const k = T + 2 * A
    d.pipe("clicks", clickJson("c-outside", "u1", k - A - 1), { backlog: true })
    d.pipe("clicks", clickJson("c-edge-b", "u1", k - A), { backlog: true })
    d.pipe("clicks", clickJson("c-edge-a", "u1", k - A), { backlog: true })
    d.pipe("clicks", clickJson("e-at", "u2", k), { backlog: true })
    d.pipe("clicks", clickJson("e-after", "u3", k + 1), { backlog: true })
    d.pipe("checkouts", checkoutJson("k1", "u1", k))
    d.pipe("checkouts", checkoutJson("k2", "u2", k))
    d.pipe("checkouts", checkoutJson("k3", "u3", k))
    d.endOfInput()
    assert.deepStrictEqual(joined(d), [["k1", "c-edge-a", false], ["k2", "e-at", false], ["k3", null, false]])
  })

  it("a late click joins nothing and is reported; a late checkout is joined at once against what is held, flagged late", () => {
    const d = driver()
    d.pipe("clicks", clickJson("c1", "u1", T))
    d.pipe("checkouts", checkoutJson("k0", "u9", T + 600_000))
    d.pipe("clicks", clickJson("c-far", "u9", T + 600_000))
    d.advanceWallClock(I)
    const wm = d.watermark
    assert.strictEqual(wm, T + 600_000, "every partition idle: the largest event time")
    d.pipe("clicks", clickJson("late", "u1", wm - 1))
    d.pipe("checkouts", checkoutJson("k-late", "u1", wm - 1))
    assert.deepStrictEqual(lateClicks(d), ["late"])
    assert.deepStrictEqual(joined(d), [["k0", "c-far", false], ["k-late", "c1", true]], "attributed to the held click, not the late one")
  })

  it("forgets a click once c.ts + A is below the watermark; a redelivered click or checkout changes nothing", () => {
    const d = driver()
    d.pipe("clicks", clickJson("c1", "u1", T), { backlog: true })
    d.pipe("clicks", clickJson("c1", "u1", T), { backlog: true })
    d.pipe("checkouts", checkoutJson("k1", "u1", T + 1_000), { backlog: true })
    d.pipe("checkouts", checkoutJson("k1", "u1", T + 1_000), { backlog: true })
    assert.strictEqual(heldOf(d.state<AttributionState>("attribution", "u1")), 1, "one click held, not two")
    // past c1's cleanup slot (the join's timers' granularity)
    d.pipe("clicks", clickJson("later", "u2", T + A + defaultSlotMs(A, A)))
    d.pipe("checkouts", checkoutJson("k2", "u2", T + A + defaultSlotMs(A, A)))
    d.advanceWallClock(I)
    assert.deepStrictEqual(joined(d), [["k1", "c1", false], ["k2", "later", false]], "one result for the checkout delivered twice")
    assert.strictEqual(heldOf(d.state<AttributionState>("attribution", "u1")), 0, "c1 dropped by its cleanup timer")
  })

  it("refuses an event time beyond MAX_FUTURE_MS and a message that is not an event; both as rejected, nothing stalls", () => {
    const d = driver({ maxFutureMs: 86_400_000 })
    d.pipe("clicks", clickJson("c-future", "u1", T + 2 * 86_400_000), { backlog: true })
    d.pipe("clicks", "{not json", { backlog: true })
    d.pipe("clicks", clickJson("c1", "u1", T))
    d.pipe("checkouts", checkoutJson("k1", "u1", T + 1_000))
    d.advanceWallClock(I)
    assert.deepStrictEqual(d.rejected().map((r) => r.envelope.offset), [0, 1])
    assert.match(d.rejected()[0]!.error, /MAX_FUTURE_MS/)
    assert.deepStrictEqual(joined(d), [["k1", "c1", false]])
    assert.isBelow(d.watermark, T + 86_400_000, "the refused event did not push the watermark")
  })
})
