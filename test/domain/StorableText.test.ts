import { assert, describe, it } from "@effect/vitest"
import { firstUnstorable, isStorableText, storableText } from "../../src/domain/StorableText.ts"

describe("storableText: what PostgreSQL text can hold", () => {
  it("returns an ordinary string as the same string", () => {
    for (const s of ["", "plain ASCII", "Straße, Köln", "Tiktok 👗", "\\u0000 as six characters", "\u0001\u001f\ufffd"]) {
      assert.strictEqual(storableText(s), s)
      assert.isTrue(isStorableText(s), s)
      assert.strictEqual(firstUnstorable(s), -1, s)
    }
  })
  it("replaces every NUL by the six characters \\u0000", () => {
    assert.strictEqual(storableText("\u0000"), "\\u0000")
    assert.strictEqual(storableText("a\u0000b\u0000\u0000c"), "a\\u0000b\\u0000\\u0000c")
    assert.strictEqual(firstUnstorable("ab\u0000"), 2)
  })
  it("replaces a lone high or low surrogate by its \\uXXXX escape", () => {
    assert.strictEqual(storableText("\ud800"), "\\ud800")
    assert.strictEqual(storableText("x\udbffy"), "x\\udbffy")
    assert.strictEqual(storableText("\udc00x"), "\\udc00x")
    assert.strictEqual(storableText("x\udfff"), "x\\udfff")
    // a low surrogate before a high one is two lone surrogates
    assert.strictEqual(storableText("\ude00\ud83d"), "\\ude00\\ud83d")
    assert.strictEqual(storableText("\ud83d\ud83d\ude00"), "\\ud83d\ud83d\ude00")
    assert.strictEqual(firstUnstorable("\ud83d\ude00\ud800"), 2)
  })
  it("keeps valid surrogate pairs, also next to what it escapes", () => {
    assert.strictEqual(storableText("👗\u0000👗"), "👗\\u0000👗")
    assert.strictEqual(storableText("\ud800👗\udc00"), "\\ud800👗\\udc00")
  })
  it("always gives a string PostgreSQL text can hold, whatever the input", () => {
    let x = 0x2545f491
    for (let n = 0; n < 200; n++) {
      let s = ""
      for (let i = 0; i < 64; i++) {
        x ^= x << 13
        x ^= x >>> 17
        x ^= x << 5
        const r = (x >>> 0) % 8
        // mostly the interesting code units: NUL, surrogates of both kinds, ASCII
        s += String.fromCharCode(r === 0 ? 0 : r < 3 ? 0xd800 + ((x >>> 8) % 0x800) : r === 3 ? 0xd83d : r === 4 ? 0xde00 : 0x41 + (x >>> 8) % 26)
      }
      const out = storableText(s)
      assert.isTrue(isStorableText(out), JSON.stringify(s))
      if (isStorableText(s)) assert.strictEqual(out, s)
    }
  })
})
