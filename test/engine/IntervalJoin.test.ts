/**
 * SPEC §3 rule by rule, on the pure operator: a key group fed elements with explicit
 * watermarks, then advanced; its output and what is left in state are checked.
 */
import { assert, describe, it } from "@effect/vitest"
import * as IntervalJoin from "../../src/engine/IntervalJoin.ts"
import type { JoinElement, JoinOutput, JoinState } from "../../src/engine/IntervalJoin.ts"
import { KeyGroup } from "../../src/engine/KeyedState.ts"

const A = 3_600_000
type El = JoinElement
const click = (id: string, ts: number, product: string | null = "p1"): El => ({ id, ts, matchKey: product })
const checkout = (id: string, ts: number, product = "p1"): El => ({ id, ts, matchKey: product })

const T = Date.parse("2026-11-23T12:00:00Z")

/** the timers' slot with A for the window and the retention (the default, as attribution has it) */
const SLOT = IntervalJoin.defaultSlotMs(A, A)

const harness = (slotMs?: number) => {
  const group = new KeyGroup<JoinState<El>, IntervalJoin.JoinInput<El, El>, JoinOutput<El, El>>(
    IntervalJoin.make<El, El>({ beforeMs: A, retentionMs: A, columns: IntervalJoin.plainColumns, ...(slotMs === undefined ? {} : { slotMs }) })
  )
  let wm = -Infinity
  const out: Array<JoinOutput<El, El>> = []
  return {
    build: (e: El, key = "u1") => { out.push(...group.process([{ key, input: { side: "build", element: e }, watermark: wm }], wm)) },
    probe: (e: El, key = "u1") => { out.push(...group.process([{ key, input: { side: "probe", element: e }, watermark: wm }], wm)) },
    advance: (to: number) => { wm = to; out.push(...group.process([], wm)) },
    out,
    joined: () => out.filter((o) => o._tag === "Joined").map((o) => o._tag === "Joined" ? [o.probe.id, o.match?.id ?? null, o.late] as const : null),
    state: (key = "u1") => group.get(key),
    stats: () => group.stats()
  }
}

describe("first-click interval join (SPEC §3)", () => {
  it("matches a click exactly A before the checkout (lower bound inclusive)", () => {
    const h = harness()
    h.build(click("c1", T - A))
    h.probe(checkout("k1", T))
    h.advance(Infinity)
    assert.deepStrictEqual(h.joined(), [["k1", "c1", false]])
  })

  it("does not match a click one ms more than A before", () => {
    const h = harness()
    h.build(click("c1", T - A - 1))
    h.probe(checkout("k1", T))
    h.advance(Infinity)
    assert.deepStrictEqual(h.joined(), [["k1", null, false]])
  })

  it("matches a click at exactly the checkout's time (upper bound inclusive)", () => {
    const h = harness()
    h.build(click("c1", T))
    h.probe(checkout("k1", T))
    h.advance(Infinity)
    assert.deepStrictEqual(h.joined(), [["k1", "c1", false]])
  })

  it("does not match a click one ms after the checkout", () => {
    const h = harness()
    h.build(click("c1", T + 1))
    h.probe(checkout("k1", T))
    h.advance(Infinity)
    assert.deepStrictEqual(h.joined(), [["k1", null, false]])
  })

  it("picks the earliest matching click, whatever the arrival order", () => {
    const h = harness()
    h.build(click("c3", T - 10))
    h.build(click("c1", T - 3_000))
    h.build(click("c2", T - 2_000))
    h.probe(checkout("k1", T))
    h.advance(Infinity)
    assert.deepStrictEqual(h.joined(), [["k1", "c1", false]])
  })

  it("breaks a tie on time by the smallest click_id", () => {
    const h = harness()
    h.build(click("c9", T - 1_000))
    h.build(click("c10", T - 1_000)) // "c10" < "c9" as strings
    h.build(click("c5", T - 1_000))
    h.probe(checkout("k1", T))
    h.advance(Infinity)
    assert.deepStrictEqual(h.joined(), [["k1", "c10", false]])
  })

  it("a product-less click matches a checkout of any product", () => {
    const h = harness()
    h.build(click("visit", T - 5_000, null))
    h.build(click("c2", T - 1_000, "p1"))
    h.probe(checkout("k1", T, "p1"))
    h.advance(Infinity)
    assert.deepStrictEqual(h.joined(), [["k1", "visit", false]])
  })

  it("a click on another product never matches", () => {
    const h = harness()
    h.build(click("c1", T - 5_000, "p2"))
    h.probe(checkout("k1", T, "p1"))
    h.advance(Infinity)
    assert.deepStrictEqual(h.joined(), [["k1", null, false]])
  })

  it("another user's click never matches", () => {
    const h = harness()
    h.build(click("c1", T - 5_000), "u2")
    h.probe(checkout("k1", T), "u1")
    h.advance(Infinity)
    assert.deepStrictEqual(h.joined(), [["k1", null, false]])
  })

  it("a redelivered click or checkout changes nothing", () => {
    const h = harness()
    h.build(click("c1", T - 5_000))
    h.build(click("c1", T - 5_000))
    h.probe(checkout("k1", T))
    h.probe(checkout("k1", T))
    h.advance(T + 1)
    h.probe(checkout("k1", T)) // after it was written: now late, still a duplicate
    h.build(click("c1", T - 5_000))
    h.advance(Infinity)
    assert.deepStrictEqual(h.joined(), [["k1", "c1", false]])
    assert.strictEqual(h.out.filter((o) => o._tag === "LateBuild").length, 0)
  })

  it("a click redelivered behind newer ones is found among the held clicks; another click of the same millisecond is held", () => {
    const h = harness()
    h.build(click("c2", T - 5_000))
    h.build(click("c3", T - 5_000))
    h.build(click("c9", T - 1_000))
    h.build(click("c1", T - 5_000)) // new, out of order: sorted in before c2
    h.build(click("c2", T - 5_000)) // redelivered, not the latest held
    assert.deepStrictEqual(h.stats().held, 4)
    h.advance(T - 2_000)
    h.build(click("c3", T - 5_000)) // redelivered below the watermark, still held: not late
    h.probe(checkout("k1", T))
    h.advance(Infinity)
    assert.deepStrictEqual(h.joined(), [["k1", "c1", false]])
    assert.strictEqual(h.out.filter((o) => o._tag === "LateBuild").length, 0)
  })

  it("clicks stamped with one time (a batch's clock): each new id is held once, a redelivery of any of them is found", () => {
    const h = harness()
    const ids = ["c5", "c12", "c3", "c40", "c1"] // not in id order: each is sorted in by id
    for (const id of ids) h.build(click(id, T - 5_000))
    for (const id of [...ids].reverse()) h.build(click(id, T - 5_000)) // redelivered: the tail's time, any place in it
    assert.strictEqual(h.stats().held, 5)
    assert.deepStrictEqual(h.state()!.ids.slice(h.state()!.first), ["c1", "c12", "c3", "c40", "c5"])
    h.build(click("c0", T - 5_000)) // one more of that millisecond, new
    assert.strictEqual(h.stats().held, 6)
    h.probe(checkout("k1", T))
    h.advance(Infinity)
    assert.deepStrictEqual(h.joined(), [["k1", "c0", false]])
  })

  it("writes a checkout only once the watermark reaches its time", () => {
    const h = harness()
    h.build(click("c1", T - 1))
    h.probe(checkout("k1", T))
    h.advance(T - 1)
    assert.deepStrictEqual(h.joined(), [])
    h.advance(T)
    assert.deepStrictEqual(h.joined(), [["k1", "c1", false]])
  })

  it("a late click joins nothing and is reported", () => {
    const h = harness()
    h.probe(checkout("k1", T))
    h.advance(T - 100)
    h.build(click("late", T - 200)) // below the watermark
    h.advance(Infinity)
    assert.deepStrictEqual(h.joined(), [["k1", null, false]])
    assert.deepStrictEqual(h.out.filter((o) => o._tag === "LateBuild").map((o) => o._tag === "LateBuild" ? o.build.id : ""), ["late"])
  })

  it("a late checkout is written at once, flagged late, against the clicks still held", () => {
    const h = harness()
    h.build(click("c1", T - 10_000))
    h.advance(T + 60_000)
    h.probe(checkout("k-late", T))
    assert.deepStrictEqual(h.joined(), [["k-late", "c1", true]])
  })

  it("drops a click once c.ts + A is below the watermark, not before", () => {
    const h = harness()
    h.build(click("c1", T))
    h.advance(T + A)
    h.probe(checkout("k0", T + 5)) // late, and c1 is still held: it matches
    assert.deepStrictEqual(h.joined(), [["k0", "c1", true]])
    h.advance(T + A + 1)
    h.probe(checkout("k1", T + 10)) // late, and c1 is gone: no match
    assert.deepStrictEqual(h.joined(), [["k0", "c1", true], ["k1", null, true]])
    // its memory is released within one cleanup slot, not before it
    h.advance(T + A + SLOT - 1)
    assert.strictEqual(h.stats().held, 1)
    h.advance(T + A + SLOT)
    assert.strictEqual(h.stats().held, 0)
  })

  it("keeps one cleanup timer per key however many slots its clicks span, and drops each click on time", () => {
    const h = harness(10_000)
    for (let i = 0; i < 360; i++) h.build(click(`c${i}`, T + i * 10_000)) // an hour of clicks, one per 10 s slot
    assert.strictEqual(h.stats().timers, 1)
    h.advance(T + A + 50_001) // the clicks of T .. T + 40 s are past A
    assert.strictEqual(h.stats().held, 355)
    assert.strictEqual(h.stats().timers, 1)
    // late: c5, exactly A before it, is still in memory (until its slot's cleanup) but past A at this watermark
    h.probe(checkout("k1", T + 50_000 + A))
    assert.deepStrictEqual(h.joined(), [["k1", "c6", true]])
    h.advance(Infinity)
    assert.deepStrictEqual(h.stats(), { keys: 0, held: 0, pending: 0, timers: 0 })
  })

  it("a click held after newer ones moves the key's cleanup earlier: it is dropped in its own slot", () => {
    const h = harness(10_000)
    h.build(click("c2", T + 30_000))
    h.build(click("c1", T)) // on time (no watermark yet), older than c2
    h.advance(T + A + 10_000)
    assert.strictEqual(h.stats().held, 1, "c1 dropped at its own slot, not c2's")
    assert.deepStrictEqual(h.state()!.ids.slice(h.state()!.first), ["c2"])
    h.advance(T + A + 40_000)
    assert.deepStrictEqual(h.stats(), { keys: 0, held: 0, pending: 0, timers: 0 })
  })

  it("keeps one forget timer per key, and forgets each checkout, late ones too, once its time is past the memory", () => {
    const h = harness(10_000)
    for (let i = 0; i < 100; i++) h.probe(checkout(`k${i}`, T + i * 10_000))
    h.advance(T + 100 * 10_000) // every one joined (no clicks): remembered
    assert.strictEqual(h.state()!.joined.size, 100)
    h.probe(checkout("late", T + 5_000)) // late and older than all but k0: sorted in
    assert.strictEqual(h.stats().timers, 1)
    h.advance(T + A + 20_001) // k0, late (T + 5 s) and k1 (T + 10 s) are past the memory; k2 (T + 20 s) is not
    assert.deepStrictEqual([...h.state()!.joined].slice(0, 3).sort(), ["k2", "k3", "k4"])
    assert.strictEqual(h.state()!.joined.size, 98)
    h.probe(checkout("k2", T + 20_000)) // still remembered: a redelivery
    h.probe(checkout("k1", T + 10_000)) // forgotten: joined again, late
    assert.deepStrictEqual(h.joined().slice(100), [["late", null, true], ["k1", null, true]])
    h.advance(Infinity)
    assert.deepStrictEqual(h.stats(), { keys: 0, held: 0, pending: 0, timers: 0 })
  })

  it("the default slot is a twelfth of the shorter of the window and the retention, from 1 s to 5 min", () => {
    assert.strictEqual(IntervalJoin.defaultSlotMs(3_600_000, 3_600_000), 300_000)
    assert.strictEqual(IntervalJoin.defaultSlotMs(600_000, 3_600_000), 50_000)
    assert.strictEqual(IntervalJoin.defaultSlotMs(86_400_000, 120_000), 10_000)
    assert.strictEqual(IntervalJoin.defaultSlotMs(0, 3_600_000), 1_000)
  })

  it("with a coarse slot, matching is still exact: a click past A is never matched, though still in memory", () => {
    const h = harness()
    h.build(click("c1", T))
    h.build(click("c2", T + 1))
    h.advance(T + A + 1) // c1 is past A; its slot has not come
    assert.strictEqual(h.stats().held, 2)
    h.probe(checkout("k1", T + A)) // late; exactly A after c1, but the watermark is past c1 + A
    assert.deepStrictEqual(h.joined(), [["k1", "c2", true]])
  })

  it("a watermark jump fires timers in time order: early cleanup never hides a click from a later checkout", () => {
    const h = harness()
    h.build(click("c1", T))
    h.probe(checkout("k1", T + 10))
    h.probe(checkout("k2", T + A)) // c1 is exactly A before k2
    h.advance(Infinity)
    assert.deepStrictEqual(h.joined(), [["k1", "c1", false], ["k2", "c1", false]])
  })

  it("state empties once everything is written and forgotten", () => {
    const h = harness()
    h.build(click("c1", T))
    h.probe(checkout("k1", T + 10))
    h.advance(Infinity)
    assert.isUndefined(h.state())
    assert.deepStrictEqual(h.stats(), { keys: 0, held: 0, pending: 0, timers: 0 })
  })

  it("a checkout older than the dedup memory is forgotten at the next advance, even when its forget slot has fired before for its key", () => {
    const h = harness()
    h.build(click("c1", T + 2 * A)) // the key stays in state throughout, holding a click
    h.probe(checkout("k1", T))
    h.advance(T + 2 * A) // k1 joined, then forgotten: its slot's timer fired
    h.probe(checkout("k2", T + 1)) // late, and older than the memory: the same forget slot as k1's
    assert.deepStrictEqual(h.joined(), [["k1", null, false], ["k2", null, true]])
    h.advance(T + 2 * A + 1)
    assert.deepStrictEqual([...h.state()!.joined.keys()], [], "k2 forgotten")
  })
})
