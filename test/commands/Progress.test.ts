import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as Progress from "../../src/commands/Progress.ts"

const collector = (isTTY: boolean) => {
  const chunks: Array<string> = []
  const output = {
    isTTY,
    columns: 160,
    write: (s: string) => { chunks.push(s); return true },
    // what cli-progress calls on a TTY
    cursorTo: () => true,
    clearLine: () => true,
    moveCursor: () => true
  }
  return { output, text: () => chunks.join(""), lines: () => chunks.join("").split("\n").filter((l) => l !== "") }
}

describe("Progress", () => {
  it("formats for people", () => {
    assert.strictEqual(Progress.formatRate(1234), "1.2 k/s")
    assert.strictEqual(Progress.formatRate(12_345), "12 k/s")
    assert.strictEqual(Progress.formatRate(2_500_000), "2.5 M/s")
    assert.strictEqual(Progress.formatRate(7.25), "7.3/s")
    assert.strictEqual(Progress.formatDuration(4_400), "4 s")
    assert.strictEqual(Progress.formatDuration(125_000), "2 min 05 s")
    assert.strictEqual(Progress.formatDuration(3_725_000), "1 h 02 min")
    assert.strictEqual(Progress.formatCount(1234567), "1,234,567")
  })

  it.effect("off a terminal: a plain line every few seconds with rate and ETA", () =>
    Effect.gen(function*() {
      const out = collector(false)
      yield* Effect.gen(function*() {
        const p = yield* Progress.make({ label: "replay", unit: "messages", total: 1_000, output: out.output, logIntervalMs: 5_000 })
        yield* p.update(100)
        assert.deepStrictEqual(out.lines(), []) // nothing before the first interval
        yield* TestClock.adjust("5 seconds")
        yield* p.update(600)
        yield* TestClock.adjust("1 second")
        yield* p.update(700) // within the interval: no new line
      }).pipe(Effect.scoped)
      assert.deepStrictEqual(out.lines(), ["replay: 600 / 1,000 messages (60.0 %), 120/s, ETA 3 s"])
    }))

  it.effect("off a terminal, short work stays quiet", () =>
    Effect.gen(function*() {
      const out = collector(false)
      yield* Effect.gen(function*() {
        const p = yield* Progress.make({ label: "generate", unit: "messages", total: 10, output: out.output })
        yield* TestClock.adjust("1 second")
        yield* p.update(10)
      }).pipe(Effect.scoped)
      assert.strictEqual(out.text(), "")
    }))

  it.effect("without a total: count, rate and elapsed time", () =>
    Effect.gen(function*() {
      const out = collector(false)
      yield* Effect.gen(function*() {
        const p = yield* Progress.make({ label: "replay", unit: "messages", output: out.output, logIntervalMs: 2_000 })
        for (let s = 1; s <= 4; s++) {
          yield* TestClock.adjust("1 second")
          yield* p.update(s * 2_000)
        }
      }).pipe(Effect.scoped)
      assert.deepStrictEqual(out.lines(), [
        "replay: 4,000 messages, 2.0 k/s, elapsed 2 s",
        "replay: 8,000 messages, 2.0 k/s, elapsed 4 s"
      ])
    }))

  it.effect("on a terminal: a bar that ends at 100 % when the scope closes", () =>
    Effect.gen(function*() {
      const out = collector(true)
      yield* Effect.gen(function*() {
        const p = yield* Progress.make({ label: "generate", unit: "messages", total: 1_000, output: out.output })
        yield* TestClock.adjust("1 second")
        yield* p.update(500)
        yield* TestClock.adjust("1 second")
        yield* p.update(1_000)
      }).pipe(Effect.scoped)
      const text = out.text()
      assert.include(text, "generate ")
      assert.match(text, /1,000 \/ 1,000 messages \(100\.0 %\), 500\/s, ETA 0 s/)
      assert.include(text, "█") // the bar itself
      assert.isTrue(text.endsWith("\n"), "the bar's line is ended")
    }))

  it.effect("poll: feeds the reporter from a counter other fibers bump, and a total found later", () =>
    Effect.gen(function*() {
      const out = collector(false)
      let counter = 0
      yield* Effect.gen(function*() {
        const p = yield* Progress.make({ label: "replay", unit: "messages", output: out.output, logIntervalMs: 1_000 })
        yield* Progress.poll(p, () => counter, "200 millis")
        const work = yield* Effect.forkChild(Effect.gen(function*() {
          for (let i = 0; i < 30; i++) {
            counter += 100
            yield* Effect.sleep("100 millis")
          }
        }))
        yield* TestClock.adjust("1 second")
        p.setTotal(3_000)
        yield* TestClock.adjust("2 seconds")
        yield* Fiber.join(work)
      }).pipe(Effect.scoped)
      const lines = out.lines()
      assert.isAtLeast(lines.length, 2)
      assert.match(lines[0]!, /^replay: 1,000 messages, 1\.0 k\/s, elapsed 1 s$/)
      assert.match(lines[lines.length - 1]!, /^replay: 3,000 \/ 3,000 messages \(100\.0 %\), 1\.0 k\/s, ETA 0 s$/)
    }))

  it.effect("mode off writes nothing", () =>
    Effect.gen(function*() {
      const out = collector(true)
      yield* Effect.gen(function*() {
        const p = yield* Progress.make({ label: "x", unit: "y", total: 5, output: out.output, mode: "off" })
        yield* TestClock.adjust("10 seconds")
        yield* p.update(5)
      }).pipe(Effect.scoped)
      assert.strictEqual(out.text(), "")
    }))
})
