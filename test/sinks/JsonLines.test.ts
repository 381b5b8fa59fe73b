/**
 * The lake's byte buffer: what it holds is exactly one JSON record a line, whatever the
 * message (non-ASCII text, a message bigger than a chunk, numbers the fast path does not
 * take), and two buffers merge in offset order.
 */
import { assert, describe, it } from "vitest"
import { JsonLines } from "../../src/sinks/JsonLines.ts"

const text = (l: JsonLines) => Buffer.concat(l.chunks()).toString("utf8")
const records = (l: JsonLines) => text(l).split("\n").filter((x) => x !== "").map((x) => JSON.parse(x))

describe("JsonLines", () => {
  it("holds one record a line, byte for byte the message's JSON", () => {
    const l = new JsonLines()
    const messages = [`{"a":"plain"}`, `{"a":"Zürich – 東京 🛍"}`, `{"a":"${"x".repeat(3 << 20)}"}`, `{"b":[1,2,3]}`]
    const times = [1_764_000_000_123, 0, 1.5, -7]
    messages.forEach((m, i) => l.append(1_000 + i, times[i]!, m))
    assert.strictEqual(l.rows, 4)
    assert.strictEqual(l.firstOffset, 1_000)
    assert.isFalse(l.multiline)
    assert.deepStrictEqual(records(l), messages.map((m, i) => ({ o: 1_000 + i, t: times[i], v: JSON.parse(m) })))
    assert.strictEqual(l.bytes, Buffer.byteLength(text(l)))
  })

  it("notes a message that spans lines", () => {
    const l = new JsonLines()
    l.append(0, 1, `{"a":\n1}`)
    assert.isTrue(l.multiline)
  })

  it("merges two buffers in offset order, whichever comes first", () => {
    const early = new JsonLines(), late = new JsonLines()
    for (let o = 0; o < 3; o++) early.append(o, o, `{"n":${o}}`)
    for (let o = 3; o < 5; o++) late.append(o, o, `{"n":${o}}`)
    const merged = JsonLines.merge(late, early)
    assert.deepStrictEqual(records(merged).map((r) => r.o), [0, 1, 2, 3, 4])
    assert.strictEqual(merged.rows, 5)
    merged.append(5, 5, `{"n":5}`)
    assert.deepStrictEqual(records(merged).map((r) => r.o), [0, 1, 2, 3, 4, 5])
  })
})
