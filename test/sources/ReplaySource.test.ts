import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Envelope } from "../../src/engine/Source.ts"
import * as ReplaySource from "../../src/sources/ReplaySource.ts"

/** Every message of one file, as the replay source hands them out. */
const readAll = (file: string): Promise<Array<Envelope>> =>
  Effect.runPromise(Effect.gen(function*() {
    const source = yield* ReplaySource.make([{ topic: "t", path: file }])
    const out: Array<Envelope> = []
    for (;;) {
      const r = yield* source.pull(0)
      if (r._tag === "End") return out
      out.push(...r.records)
    }
  }).pipe(Effect.scoped))

const write = (content: string | Buffer): string => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "replay-source-")), "in.txt")
  fs.writeFileSync(file, content)
  return file
}

describe("ReplaySource: a file as kcat writes it, one message a line", () => {
  it("splits key and value at the first TAB, numbers lines from 1, takes CRLF and a missing final newline", async () => {
    const got = await readAll(write("k1\t{\"a\":1}\r\nno-tab-value\n\n k\t v\tw\nlast\tline"))
    assert.deepStrictEqual(got.map((e) => [e.offset, e.key, e.value]), [
      [1, "k1", "{\"a\":1}"], [2, null, "no-tab-value"], [3, null, ""], [4, " k", " v\tw"], [5, "last", "line"]
    ])
  })
  it("drops a byte-order mark at the start of the file, and only there", async () => {
    const got = await readAll(write("\ufeffk\tv\n\ufeffk2\tv2\n"))
    assert.deepStrictEqual(got.map((e) => [e.key, e.value]), [["k", "v"], ["\ufeffk2", "v2"]])
  })
  it("reads multi-byte characters that straddle the 1 MiB reads, and lines longer than a read, exactly", async () => {
    // lines of varied length so that 2-, 3- and 4-byte characters fall on every read boundary
    const lines: Array<string> = []
    let bytes = 0
    for (let i = 0; bytes < 5 * 2 ** 20; i++) {
      const line = `u${i}\t${"é".repeat(i % 7)}${"€".repeat(i % 5)}${"👗".repeat(i % 3)}${"x".repeat(i % 301)}`
      lines.push(line)
      bytes += Buffer.byteLength(line) + 1
    }
    lines.splice(1000, 0, `long\t${"ü".repeat(1_500_000)}`) // 3 MB: longer than a read
    const got = await readAll(write(lines.join("\n") + "\n"))
    assert.strictEqual(got.length, lines.length)
    for (let i = 0; i < lines.length; i++) {
      const [key, value] = [lines[i]!.slice(0, lines[i]!.indexOf("\t")), lines[i]!.slice(lines[i]!.indexOf("\t") + 1)]
      if (got[i]!.key !== key || got[i]!.value !== value) assert.fail(`line ${i + 1} differs`)
    }
  })
  it("hands on each value's bytes when its read is one byte a character, exactly the value's UTF-8", async () => {
    const ascii = await readAll(write("k1\t{\"a\":1}\r\nno-tab-value\n\n k\t v\tw\nlast\tline"))
    assert.deepStrictEqual(ascii.map((e) => e.bytes === undefined ? undefined : Buffer.from(e.bytes).toString("latin1")), ascii.map((e) => e.value))
    const bom = await readAll(write("\ufeffk\tv\nk2\tv2\n"))
    for (const e of bom) if (e.bytes !== undefined) assert.strictEqual(Buffer.from(e.bytes).toString(), e.value)
    // a read holding a multi-byte character: its values have no bytes (their characters do not index them)
    const mixed = await readAll(write("k\tcafé\nk2\tplain\n"))
    assert.deepStrictEqual(mixed.map((e) => [e.value, e.bytes]), [["café", undefined], ["plain", undefined]])
    // stray bytes read one character each (U+FFFD): the bytes are the raw ones, which the taps refuse by the U+FFFD
    const invalid = await readAll(write(Buffer.concat([Buffer.from("k\ta"), Buffer.from([0xff, 0xc3]), Buffer.from("\nk2\tb\n")])))
    assert.deepStrictEqual(invalid.map((e) => e.bytes === undefined ? undefined : [...e.bytes]), [[0x61, 0xff, 0xc3], [0x62]])
  })
  it("stops mid-file, with the next read in flight, cleanly", async () => {
    const file = write(Array.from({ length: 20_000 }, (_, i) => `k${i}\t${"v".repeat(200)}`).join("\n") + "\n") // 4 MB: several reads
    const first = await Effect.runPromise(Effect.gen(function*() {
      const source = yield* ReplaySource.make([{ topic: "t", path: file }])
      const r = yield* source.pull(0)
      return r._tag === "Records" ? r.records.map((e) => e.offset) : []
    }).pipe(Effect.scoped))
    assert.deepStrictEqual(first.slice(0, 3), [1, 2, 3])
    // the whole file still reads the same from the start
    assert.strictEqual((await readAll(file)).length, 20_000)
  })
  it("reads invalid UTF-8 as replacement characters, as a decoder would, without losing the line", async () => {
    const got = await readAll(write(Buffer.concat([Buffer.from("k\ta"), Buffer.from([0xff, 0xc3]), Buffer.from("\nk2\tb\n")])))
    assert.deepStrictEqual(got.map((e) => [e.key, e.value]), [["k", "a\ufffd\ufffd"], ["k2", "b"]])
  })
})
