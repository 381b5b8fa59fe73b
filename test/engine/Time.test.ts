/**
 * SPEC §2 with processing time under TestClock: watermarks, idleness, lateness and when a
 * checkout's row is written, through the real runner.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { WatermarkTracker } from "../../src/engine/Watermark.ts"
import { A, checkoutJson, clickJson, I, makeDriver, W } from "../support/JobDriver.ts"

const T = Date.parse("2026-11-23T12:00:00Z")

describe("watermark tracker", () => {
  it("is the minimum over non-idle partitions of max event time − W, and never moves back", () => {
    const t = new WatermarkTracker({ outOfOrdernessMs: W, idleTimeoutMs: I })
    const a = t.register("a", 0), b = t.register("b", 0)
    assert.strictEqual(t.current(0), -Infinity) // b never delivered: holds at −∞
    t.observe(a, T)
    assert.strictEqual(t.current(0), -Infinity)
    t.observe(b, T - 5_000)
    assert.strictEqual(t.current(0), T - 5_000 - W)
    t.observe(b, T - 60_000) // an older event does not pull it back
    assert.strictEqual(t.current(0), T - 5_000 - W)
  })
})

describe("time through the runner (TestClock)", () => {
  it.effect("the watermark never moves backwards", () =>
    Effect.gen(function*() {
      const d = yield* makeDriver()
      yield* d.send("clicks", clickJson("c1", "u1", T), { backlog: true })
      yield* d.send("checkouts", checkoutJson("k1", "u1", T + 10_000), { backlog: true })
      const w1 = d.watermark()
      assert.strictEqual(w1, T - W)
      yield* d.send("clicks", clickJson("c0", "u1", T - 600_000), { backlog: true })
      assert.strictEqual(d.watermark(), w1)
      yield* d.stop
    }))

  it.effect("a caught-up partition stops holding the watermark after I; one with a backlog never does", () =>
    Effect.gen(function*() {
      const d = yield* makeDriver()
      yield* d.send("clicks", clickJson("c1", "u1", T + 100_000), { backlog: false })
      yield* d.send("checkouts", checkoutJson("k1", "u1", T), { backlog: true })
      assert.strictEqual(d.watermark(), T - W)
      yield* d.advance(I * 10)
      assert.strictEqual(d.watermark(), T - W, "the checkouts partition has a backlog: never idle")
      // now the checkouts partition is caught up, and the clicks partition keeps delivering
      yield* d.send("checkouts", checkoutJson("k2", "u2", T + 1), { backlog: false })
      yield* d.send("clicks", clickJson("c2", "u2", T + 200_000), { backlog: false })
      yield* d.advance(I - 1_000)
      assert.strictEqual(d.watermark(), T + 1 - W, "not idle before I")
      yield* d.send("clicks", clickJson("c3", "u3", T + 300_000), { backlog: false }) // keeps clicks active
      yield* d.advance(1_000)
      assert.strictEqual(d.watermark(), T + 300_000 - W, "checkouts idle: the clicks partition alone sets it")
      yield* d.stop
    }))

  it.effect("a source that reports caught-up partitions (Kafka): idle only once it says so I after the last delivery; silence alone (a broker that hangs) is not idleness", () =>
    Effect.gen(function*() {
      const d = yield* makeDriver({ reportsCaughtUp: true })
      yield* d.send("clicks", clickJson("c1", "u1", T + 100_000), { backlog: false })
      yield* d.send("checkouts", checkoutJson("k1", "u1", T), { backlog: false })
      assert.strictEqual(d.watermark(), T - W)
      // the source falls silent: no delivery, no report, for ten times I
      yield* d.advance(I * 10)
      assert.strictEqual(d.watermark(), T - W, "nobody said the partitions are caught up: neither is idle")
      // a report before I has passed since the last delivery does not count
      yield* d.send("checkouts", checkoutJson("k2", "u2", T + 1), { backlog: false })
      yield* d.advance(I - 1_000)
      yield* d.caughtUp("checkouts")
      yield* d.advance(2_000)
      assert.strictEqual(d.watermark(), T + 1 - W, "the only report came before I")
      // the clicks partition is reported caught up now (long after its last delivery): idle; the
      // checkouts partition too, once reported again: every partition idle
      yield* d.caughtUp("clicks")
      assert.strictEqual(d.watermark(), T + 1 - W, "the checkouts partition still holds it")
      yield* d.caughtUp("checkouts")
      assert.strictEqual(d.watermark(), T + 100_000, "every partition idle: the largest event time seen")
      yield* d.stop
    }))

  it.effect("when every partition is idle the watermark is the largest event time seen; the wall clock alone never moves it", () =>
    Effect.gen(function*() {
      const d = yield* makeDriver()
      yield* d.send("clicks", clickJson("c1", "u1", T), { backlog: false })
      yield* d.send("checkouts", checkoutJson("k1", "u1", T + 5_000), { backlog: false })
      assert.strictEqual(d.watermark(), T - W)
      yield* d.advance(I)
      assert.strictEqual(d.watermark(), T + 5_000)
      yield* d.advance(3 * 3_600_000)
      assert.strictEqual(d.watermark(), T + 5_000, "hours of wall clock change nothing")
      assert.deepStrictEqual(d.joined(), [["k1", "c1", false]], "the quiet store's checkout is written")
      yield* d.stop
    }))

  it.effect("a checkout's row appears only when the watermark reaches its time", () =>
    Effect.gen(function*() {
      const d = yield* makeDriver()
      yield* d.send("clicks", clickJson("c1", "u1", T - 60_000), { backlog: true })
      yield* d.send("checkouts", checkoutJson("k1", "u1", T), { backlog: true })
      yield* d.send("clicks", clickJson("c2", "u9", T + W - 1), { backlog: true })
      yield* d.send("checkouts", checkoutJson("k9", "u9", T + W - 1), { backlog: true })
      assert.strictEqual(d.watermark(), T - 1)
      assert.deepStrictEqual(d.joined(), [], "one ms short: not yet")
      yield* d.advance(I * 3)
      assert.deepStrictEqual(d.joined(), [], "backlog: processing time alone writes nothing")
      yield* d.send("clicks", clickJson("c3", "u9", T + W), { backlog: true })
      yield* d.send("checkouts", checkoutJson("k8", "u8", T + W), { backlog: true })
      assert.strictEqual(d.watermark(), T)
      assert.deepStrictEqual(d.joined(), [["k1", "c1", false]])
      yield* d.stop
    }))

  it.effect("a late click goes to late events only; a late checkout is written late and reported", () =>
    Effect.gen(function*() {
      const d = yield* makeDriver()
      yield* d.send("clicks", clickJson("c1", "u1", T), { backlog: true })
      yield* d.send("checkouts", checkoutJson("k0", "u0", T + 120_000), { backlog: true })
      yield* d.send("clicks", clickJson("c9", "u0", T + 120_000), { backlog: true })
      assert.strictEqual(d.watermark(), T + 120_000 - W)
      yield* d.send("clicks", clickJson("late-click", "u1", T + 1_000), { backlog: true })
      yield* d.send("checkouts", checkoutJson("late-k", "u1", T + 2_000), { backlog: true })
      assert.deepStrictEqual(d.lateClicks(), ["late-click"])
      assert.deepStrictEqual(d.joined(), [["late-k", "c1", true]], "attributed against the clicks held, never the late one")
      yield* d.stop
    }))

  it.effect("a bad message becomes a rejected record and the next one goes on", () =>
    Effect.gen(function*() {
      const d = yield* makeDriver()
      yield* d.send("clicks", "{not json", { backlog: true })
      yield* d.send("clicks", "", { backlog: true })
      yield* d.send("clicks", clickJson("c1", "u1", T), { backlog: true })
      yield* d.send("checkouts", checkoutJson("k1", "u1", T + 1), { backlog: false })
      yield* d.advance(I)
      yield* d.send("clicks", clickJson("c2", "u2", T + A), { backlog: false })
      yield* d.advance(I)
      assert.deepStrictEqual(d.rejected().map((r) => r.envelope.offset), [0, 1])
      assert.deepStrictEqual(d.joined(), [["k1", "c1", false]])
      yield* d.stop
    }))
})

describe("a partition of garbage (TestClock)", () => {
  it.effect("never holds the watermark: undecodable messages are not activity", () =>
    Effect.gen(function*() {
      const d = yield* makeDriver({ partitions: [["clicks", 0], ["checkouts", 0], ["clicks", 1]] })
      yield* d.send("clicks", clickJson("c1", "u1", T), { backlog: false })
      yield* d.send("checkouts", checkoutJson("k1", "u1", T + 1_000), { backlog: false })
      for (let i = 0; i < 40; i++) {
        yield* d.send("clicks", "garbage", { partition: 1, backlog: false })
        yield* d.advance(1_000)
      }
      assert.strictEqual(d.watermark(), T + 1_000, "all idle but for garbage: the largest event time")
      assert.deepStrictEqual(d.joined(), [["k1", "c1", false]])
      assert.strictEqual(d.rejected().length, 40)
      yield* d.stop
    }))
})

describe("event-time alignment of unbounded inputs (TestClock)", () => {
  it.effect("a topic that arrives a moment after the other is merged with it by event time", () =>
    Effect.gen(function*() {
      const d = yield* makeDriver({ align: true })
      // the whole clicks backlog first, with a click two hours behind at its end ...
      yield* d.send("clicks", clickJson("c1", "u1", T), { backlog: true })
      yield* d.send("clicks", clickJson("c2", "u2", T + 3 * A), { backlog: true })
      yield* d.send("clicks", clickJson("late", "u3", T + 10_000), { backlog: false })
      assert.strictEqual(d.watermark(), -Infinity, "nothing is released while the checkouts partition, not idle, has nothing")
      // ... then the checkouts, a second later
      yield* d.advance(1_000)
      yield* d.send("checkouts", checkoutJson("k1", "u1", T + 1_000), { backlog: true })
      yield* d.send("checkouts", checkoutJson("k3", "u3", T + A + 1_000), { backlog: true })
      yield* d.send("checkouts", checkoutJson("k9", "u9", T + 3 * A + 1), { backlog: false })
      yield* d.advance(I)
      assert.deepStrictEqual(d.lateClicks(), ["late"], "judged as a replay of the same files would judge it")
      assert.deepStrictEqual(d.joined(), [["k1", "c1", false], ["k3", null, false], ["k9", null, false]])
      yield* d.stop
    }))

  it.effect("a caught-up partition that has delivered does not hold the others back", () =>
    Effect.gen(function*() {
      const d = yield* makeDriver({ align: true })
      yield* d.send("checkouts", checkoutJson("k1", "u1", T + 1_000), { backlog: false })
      yield* d.send("clicks", clickJson("c1", "u1", T), { backlog: false })
      yield* d.send("clicks", clickJson("c2", "u2", T + 200_000), { backlog: false })
      yield* d.send("clicks", clickJson("late", "u3", T - A), { backlog: false })
      assert.deepStrictEqual(d.lateClicks(), ["late"], "released at once, with the checkouts partition empty but caught up")
      yield* d.stop
    }))

  it.effect("an idle partition is not waited for", () =>
    Effect.gen(function*() {
      const d = yield* makeDriver({ align: true })
      // the checkouts partition is caught up (as the Kafka source reports after assignment),
      // never delivers, and is idle once I has passed
      yield* d.memory.send({ _tag: "Records", topic: "checkouts", partition: 0, records: [], backlog: false })
      yield* d.advance(I)
      yield* d.send("clicks", clickJson("c1", "u1", T), { backlog: false })
      assert.strictEqual(d.watermark(), T - W)
      yield* d.stop
    }))
})
