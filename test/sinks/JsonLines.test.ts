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

  it("copies a row's bytes when given them: the same record as from its text", () => {
    const messages = [`{"a":"plain"}`, `{"a":"Zürich – 東京 🛍"}`, `{"a":"${"y".repeat(2 << 20)}"}`, `{}`]
    const fromText = new JsonLines(), fromBytes = new JsonLines()
    messages.forEach((m, i) => {
      fromText.append(i, 1_764_000_000_000 + i, m)
      fromBytes.append(i, 1_764_000_000_000 + i, m, Buffer.from(m))
    })
    assert.isTrue(Buffer.concat(fromBytes.chunks()).equals(Buffer.concat(fromText.chunks())))
    assert.deepStrictEqual(records(fromBytes).map((r) => r.v), messages.map((m) => JSON.parse(m)))
  })

  it("writes every integer's digits as JSON does, across the int32 and 10^8 boundaries", () => {
    const l = new JsonLines()
    const numbers = [0, 7, 9, 10, 11, 99, 100, 101, 999, 1_000, 9_999, 10_000, 12_345, 99_999, 100_000, 654_321, 999_999, 1_000_000, 7_654_321,
      9_999_999, 10_000_000, 87_654_321, 123_456_789, 999_999_999, 1_000_000_000, 2 ** 31 - 2, 2 ** 31 - 1, 2 ** 31, 99_999_999, 100_000_000, 100_000_001,
      1_764_633_600_000, 1_764_633_600_009, 1_800_000_000_000_001, 9_999_999_999_999_999, Number.MAX_SAFE_INTEGER, 1e16, 2 ** 60, -1, -1_764_633_600_000, 0.25]
    numbers.forEach((n, i) => l.append(i, n, `{}`))
    assert.deepStrictEqual(records(l).map((r) => r.t), numbers)
    // the record's bytes are JSON's own spelling of the number (no padding, no exponent lost)
    assert.deepStrictEqual(text(l).split("\n").slice(0, -1).map((line) => line.slice(line.indexOf(`"t":`) + 4, line.indexOf(`,"v"`))), numbers.map((n) => JSON.stringify(n)))
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

  it("gives each chunk back once: buffers made after a merge and its release never share bytes", () => {
    const a = new JsonLines(), b = new JsonLines()
    a.append(0, 0, `{"n":0}`)
    b.append(1, 1, `{"n":1}`)
    const merged = JsonLines.merge(b, a)
    // releasing the merged buffers too (a misuse) gives nothing back twice: merging emptied them
    a.release()
    b.release()
    merged.release()
    const lines = Array.from({ length: 6 }, () => new JsonLines())
    lines.forEach((l, i) => l.append(i, i, `{"who":"${"abcdef"[i]!.repeat(100)}"}`))
    lines.forEach((l, i) => assert.deepStrictEqual(records(l), [{ o: i, t: i, v: { who: "abcdef"[i]!.repeat(100) } }]))
  })
})
