/**
 * The raw-lake tap writes each event's row from what it read: the message's own JSON, copied
 * from the bytes the source read when they are at hand and valid UTF-8, re-encoded from the
 * text when they are not, and rebuilt from the decoded fields when the JSON holds a `\u`
 * escape (DuckDB's reader would refuse a lone surrogate).
 */
import { assert, describe, it } from "vitest"
import type { OperatorContext } from "../../src/engine/KeyedState.ts"
import type { Envelope } from "../../src/engine/Source.ts"
import type { ShopEvent } from "../../src/jobs/Attribution.ts"
import * as RawLake from "../../src/jobs/RawLake.ts"
import type { LakeSegment } from "../../src/sinks/LakeSegments.ts"

const T = Date.parse("2026-11-23T12:00:00Z")
const click = (i: number): ShopEvent => ({
  clickId: `c${i}`, userId: "u1", productId: "p1", source: "Google", eventType: "click", userAgent: "Firefox \ud83e\udd8a", ipAddress: null, ts: T + i
})

/** Feeds `(event, message)` pairs to one tap and returns the JSON of each row it hands on, in order. */
const rowsOf = (inputs: ReadonlyArray<readonly [ShopEvent, Envelope]>): Array<{ raw: Buffer; v: unknown }> => {
  const tap = RawLake.tap()
  const out: Array<LakeSegment> = []
  const ctx = { key: "", watermark: -Infinity, message: undefined as Envelope | undefined, registerTimer: () => {}, emit: (s: LakeSegment) => { out.push(s) } }
  for (const [event, message] of inputs) {
    ctx.message = message
    tap.onElement(null, event, ctx as OperatorContext<LakeSegment>)
  }
  tap.onFlush!(T, ctx.emit, true)
  // split on the bytes (not on decoded text): a byte that is not valid UTF-8 stays visible
  const bytes = Buffer.concat(out.flatMap((s) => [...s.lines.chunks()]))
  const rows: Array<{ raw: Buffer; v: unknown }> = []
  for (let at = 0; at < bytes.length;) {
    const nl = bytes.indexOf(0x0a, at)
    const raw = bytes.subarray(at, nl)
    rows.push({ raw, v: (JSON.parse(raw.toString("utf8")) as { v: unknown }).v })
    at = nl + 1
  }
  return rows
}

const message = (offset: number, value: string, bytes?: Uint8Array): Envelope => ({ topic: "clicks", partition: 0, offset, key: "u1", value, bytes })

describe("the raw-lake tap", () => {
  it("copies the bytes read when it has them, and encodes the text when it has not", () => {
    const value = JSON.stringify({ click_id: "c0", user_id: "u1", source: "Google", user_agent: "Firefox 🦊" })
    // bytes that spell the same JSON differently: the row shows which of the two was written
    const spaced = Buffer.from(JSON.stringify(JSON.parse(value), null, 1).replaceAll("\n", ""))
    const rows = rowsOf([[click(0), message(0, value, spaced)], [click(1), message(1, value)]])
    assert.include(rows[0]!.raw.toString(), spaced.toString(), "the bytes, as read")
    assert.include(rows[1]!.raw.toString(), value, "the text, encoded")
    assert.deepStrictEqual(rows.map((r) => r.v), [JSON.parse(value), JSON.parse(value)])
  })

  it("writes valid UTF-8 for bytes that are not (the text read them as U+FFFD)", () => {
    const bytes = Buffer.concat([Buffer.from(`{"click_id":"c0","user_id":"u1","source":"Goo`), Buffer.from([0xff]), Buffer.from(`gle"}`)])
    const value = bytes.toString("utf8")
    assert.include(value, "\ufffd")
    const [row] = rowsOf([[click(0), message(0, value, bytes)]])
    assert.isTrue(Buffer.from(row!.raw.toString("utf8")).equals(row!.raw), "the row is valid UTF-8")
    assert.deepStrictEqual(row!.v, JSON.parse(value))
  })

  it("rebuilds the row from the decoded fields when the JSON holds a \\u escape, bytes or not", () => {
    const value = `{"click_id":"c0","user_id":"u1","source":"Google","user_agent":"Firefox \\ud83e\\udd8a"}`
    const rows = rowsOf([[click(0), message(0, value, Buffer.from(value))], [click(1), message(1, value)]])
    for (const r of rows) {
      assert.notInclude(r.raw.toString(), "\\u")
      assert.strictEqual((r.v as { user_agent: string }).user_agent, "Firefox 🦊")
    }
  })
})
