import { assert, describe, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import { CheckoutJson, ClickJson, decodeCheckout, decodeClick, isDecodeFailure, schemaDecoders } from "../../src/domain/Events.ts"
import { makeProducts, makeUsers } from "../../src/generator/Catalog.ts"
import { makeSimulator } from "../../src/generator/Shoppers.ts"
import { amounts } from "../../src/domain/Money.ts"
import { isStorableText } from "../../src/domain/StorableText.ts"
import { formatTimestamp, MAX_TIMESTAMP, MIN_TIMESTAMP, parseTimestamp } from "../../src/domain/Timestamp.ts"
import { checkoutJson, clickJson, corpusLatestEventTime, corpusNow, nearValid, poisonCorpus } from "../support/PoisonCorpus.ts"

const checkout = (overrides: Record<string, unknown> = {}) => JSON.stringify({
  checkout_id: "k1", user_id: "u1", product_id: "p1", quantity: 2, shipping_cost: 4.5, discount: 0.1,
  payment_method: "Visa", payment_status: "Success", payment_description: "None", shipping_address: "1 Main St",
  checkout_timestamp: "2026-11-23T10:00:00Z", ...overrides
})

const errorOf = (r: unknown): string => isDecodeFailure(r as never) ? (r as { error: string }).error : "decoded"

describe("timestamps (SPEC §1)", () => {
  it("reads ISO-8601 with Z or an offset, and the naive form as UTC", () => {
    const utc = Date.UTC(2026, 10, 23, 10, 0, 0)
    assert.strictEqual(parseTimestamp("2026-11-23T10:00:00Z"), utc)
    assert.strictEqual(parseTimestamp("2026-11-23T12:00:00+02:00"), utc)
    assert.strictEqual(parseTimestamp("2026-11-23T05:30:00-0430"), utc)
    assert.strictEqual(parseTimestamp("2026-11-23 10:00:00"), utc)
    assert.strictEqual(parseTimestamp("2026-11-23 10:00:00.123"), utc + 123)
    assert.strictEqual(parseTimestamp("2026-11-23 10:00:00.123456"), utc + 123)
  })
  it("rejects what is not a timestamp", () => {
    for (const bad of ["", "yesterday", "2026-11-23", "2026-13-01 00:00:00", "2026-02-30 00:00:00", "2026-11-23 25:00:00", "1700000000"]) {
      assert.isUndefined(parseTimestamp(bad), bad)
    }
  })
})

describe("decoding events (SPEC §1)", () => {
  it("decodes the Flink version's click JSON unchanged: no product_id or event_type, naive time, integer ids", () => {
    const click = decodeClick(`{"click_id": 17, "user_id": 100001, "source": "Tiktok", "user_agent": "ua", "ip_address": "1.2.3.4", "click_timestamp": "2024-03-20 12:00:00.250"}`)
    assert.deepStrictEqual(click, {
      clickId: "17", userId: "100001", productId: null, source: "Tiktok", eventType: "click",
      userAgent: "ua", ipAddress: "1.2.3.4", ts: Date.UTC(2024, 2, 20, 12, 0, 0, 250)
    })
  })
  it("ignores unknown fields and keeps event_type", () => {
    const click = decodeClick(`{"click_id":"c","user_id":"u","product_id":"p","source":"Google","event_type":"add_to_cart","extra":[1],"click_timestamp":"2026-01-01T00:00:00Z"}`)
    assert.strictEqual(isDecodeFailure(click as never), false)
    assert.strictEqual((click as { eventType: string }).eventType, "add_to_cart")
  })
  it("decodes a checkout", () => {
    const k = decodeCheckout(checkout())
    assert.strictEqual(isDecodeFailure(k as never), false)
    assert.include(k, { checkoutId: "k1", quantity: 2, discount: 0.1, paymentStatus: "Success", ts: Date.UTC(2026, 10, 23, 10) })
  })
  it("says in words what is wrong with each class of bad message", () => {
    const cases: Array<[string, string]> = [
      ["", "empty message"],
      ["   ", "empty message"],
      ["{oops", "not JSON"],
      ["[1,2]", "not a JSON object"],
      ["42", "not a JSON object"],
      ["null", "not a JSON object"],
      [checkout({ checkout_id: undefined }), `Missing key at ["checkout_id"]`],
      [checkout({ quantity: "2" }), `["quantity"]`],
      [checkout({ quantity: 0 }), `greater than or equal to 1 at ["quantity"]`],
      [checkout({ quantity: 1.5 }), `["quantity"]`],
      [checkout({ discount: 1 }), `["discount"]`],
      [checkout({ discount: -0.1 }), `["discount"]`],
      [checkout({ shipping_cost: -1 }), `["shipping_cost"]`],
      [checkout({ payment_status: "Pending" }), `["payment_status"]`],
      [checkout({ checkout_timestamp: "soon" }), `["checkout_timestamp"]`],
      [checkout({ user_id: 1.5 }), `["user_id"]`]
    ]
    for (const [input, expected] of cases) assert.include(errorOf(decodeCheckout(input)), expected, input)
    assert.include(errorOf(decodeClick(`{"click_id":"c","user_id":"u","click_timestamp":"2026-01-01T00:00:00Z"}`)), `Missing key at ["source"]`)
    assert.include(errorOf(decodeClick(`{"click_id":"c","user_id":"u","source":"x","event_type":"buy","click_timestamp":"2026-01-01T00:00:00Z"}`)), `["event_type"]`)
  })
})

describe("money (SPEC §4)", () => {
  it("total_amount = round(price × quantity × (1 − discount), 2), half away from zero, exactly", () => {
    assert.strictEqual(amounts("19.99", 3, 0.15, 5.99, "0.1").totalAmount, "50.97")
    assert.strictEqual(amounts("2.675", 1, 0, 0, "0").totalAmount, "2.68") // 2.675 is 2.67499… as a float
    assert.strictEqual(amounts("10.05", 1, 0.5, 0, "0").totalAmount, "5.03")
  })
  it("profit = round((total_amount − shipping_cost) × commission_rate, 2), negative when shipping exceeds it", () => {
    assert.strictEqual(amounts("19.99", 3, 0.15, 5.99, "0.1").profit, "4.50")
    assert.strictEqual(amounts("10", 1, 0.5, 7, "0.2").profit, "-0.40")
    assert.strictEqual(amounts("10", 1, 0.5, 7.5, "0.1").profit, "-0.25")
  })
})

describe("timestamps: the fast path agrees with the general one", () => {
  it("on valid and invalid canonical strings", () => {
    for (const t of ["2026-11-23T10:00:00.123Z", "2024-02-29T23:59:59.999Z", "2026-01-01T00:00:00.000Z"]) {
      assert.strictEqual(parseTimestamp(t), Date.parse(t), t)
    }
    for (const t of ["2023-02-29T00:00:00.000Z", "2026-11-31T00:00:00.000Z", "2026-11-23T24:00:00.000Z", "2026-11-23T10:60:00.000Z", "2026-1x-23T10:00:00.000Z"]) {
      assert.isUndefined(parseTimestamp(t), t)
    }
  })
})

describe("timestamps: 4-digit years only, each read as itself", () => {
  it("reads years 0001 to 0099 as such, not as 1901 to 1999 (Date.UTC's reading)", () => {
    for (const t of ["0050-06-15T12:00:00.000Z", "0099-12-31T23:59:59.999Z", "0004-02-29T00:00:00.000Z"]) {
      assert.strictEqual(parseTimestamp(t), Date.parse(t), t)
      assert.strictEqual(formatTimestamp(parseTimestamp(t)!), t)
    }
    assert.strictEqual(parseTimestamp("0050-06-15 12:00:00"), Date.parse("0050-06-15T12:00:00Z"))
    assert.strictEqual(parseTimestamp("0050-06-15T14:00:00+02:00"), Date.parse("0050-06-15T12:00:00Z"))
    assert.isUndefined(parseTimestamp("0003-02-29T00:00:00.000Z"))
    assert.isUndefined(parseTimestamp("0100-02-29 00:00:00"))
  })
  it("accepts 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z and nothing outside", () => {
    assert.strictEqual(formatTimestamp(MIN_TIMESTAMP), "0001-01-01T00:00:00.000Z")
    assert.strictEqual(formatTimestamp(MAX_TIMESTAMP), "9999-12-31T23:59:59.999Z")
    assert.strictEqual(parseTimestamp("0001-01-01T00:00:00.000Z"), MIN_TIMESTAMP)
    assert.strictEqual(parseTimestamp("9999-12-31T23:59:59.999Z"), MAX_TIMESTAMP)
    assert.strictEqual(parseTimestamp("0001-01-01T01:00:00+01:00"), MIN_TIMESTAMP)
    for (const bad of [
      "0000-01-01T00:00:00.000Z", "0000-06-15 00:00:00", "0000-12-31T23:59:59Z",
      "0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00", "9999-12-31 23:59:59.999-00:01"
    ]) {
      assert.isUndefined(parseTimestamp(bad), bad)
    }
  })
})

const decodeAt = (topic: "clicks" | "checkouts", value: string, latestEventTime: number) =>
  topic === "clicks" ? decodeClick(value, latestEventTime) : decodeCheckout(value, latestEventTime)

describe("decoding refuses what PostgreSQL cannot store (SPEC §1 Limits)", () => {
  it("refuses every message of the poison corpus, naming the field or the problem", () => {
    for (const m of poisonCorpus) {
      const r = decodeAt(m.topic, m.value, corpusLatestEventTime)
      assert.isTrue(isDecodeFailure(r), `${m.name}: decoded`)
      assert.include(errorOf(r), m.reason, m.name)
    }
  })
  it("decodes every near miss", () => {
    for (const m of nearValid) {
      const r = decodeAt(m.topic, m.value, corpusLatestEventTime)
      assert.isFalse(isDecodeFailure(r), `${m.name}: ${errorOf(r)}`)
    }
  })
  it("gives reasons that are short and storable themselves, whatever the message held", () => {
    for (const m of poisonCorpus) {
      const error = errorOf(decodeAt(m.topic, m.value, corpusLatestEventTime))
      assert.isTrue(isStorableText(error), m.name)
      assert.isBelow(error.length, 1_000, m.name)
    }
    // JSON.parse quotes the start of the text: a NUL or a lone surrogate in it is escaped
    assert.strictEqual(errorOf(decodeClick("\u0000\u0000")), `not JSON: Unexpected token '\\u0000', "\\u0000\\u0000" is not valid JSON`)
    assert.isTrue(isStorableText(errorOf(decodeClick("\ud800 "))))
  })
  it("keeps the values at the limits exactly", () => {
    const k = decodeCheckout(checkoutJson({ quantity: 2_147_483_647, shipping_cost: 9_999_999_999.99, checkout_id: "k".repeat(256), payment_method: "V".repeat(4096) }), corpusLatestEventTime)
    assert.include(k, { quantity: 2_147_483_647, shippingCost: 9_999_999_999.99, checkoutId: "k".repeat(256), paymentMethod: "V".repeat(4096) })
    const c = decodeClick(clickJson({ click_id: 9_007_199_254_740_991, user_id: -5, source: "Tiktok \ud83d\udc57" }), corpusLatestEventTime)
    assert.include(c, { clickId: "9007199254740991", userId: "-5", source: "Tiktok 👗" })
  })
  it("names every problem of a message at once", () => {
    const error = errorOf(decodeCheckout(checkoutJson({
      quantity: 3_000_000_000, shipping_cost: 1e10, user_id: "u".repeat(300), payment_method: "\u0000",
      checkout_timestamp: "2099-01-01T00:00:00Z"
    }), corpusLatestEventTime))
    for (const field of ["quantity", "shipping_cost", "user_id", "payment_method", "checkout_timestamp"]) assert.include(error, `["${field}"]`, error)
  })
  it("refuses an event time more than MAX_FUTURE_MS ahead only when told the latest time", () => {
    const at = (t: string) => checkoutJson({ checkout_timestamp: t })
    assert.isFalse(isDecodeFailure(decodeCheckout(at("2099-01-01T00:00:00Z")))) // no clock given: Infinity
    assert.isFalse(isDecodeFailure(decodeCheckout(at("2026-11-24T00:00:00Z"), corpusNow + 86_400_000)))
    assert.strictEqual(
      errorOf(decodeCheckout(at("2026-11-24T00:00:00.001+00:00"), corpusNow + 86_400_000)),
      `event time 2026-11-24T00:00:00.001Z is more than MAX_FUTURE_MS ahead of the clock at ["checkout_timestamp"]`
    )
    assert.include(errorOf(decodeClick(clickJson({ click_timestamp: "2099-01-01 00:00:00" }), corpusNow)), `ahead of the clock at ["click_timestamp"]`)
  })
  it("agrees with ClickJson / CheckoutJson, the Schema that explains refusals", () => {
    // the hot path checks the limits by hand; the Schema must refuse exactly the same messages
    for (const m of [...poisonCorpus, ...nearValid]) {
      let parsed: unknown
      try {
        parsed = JSON.parse(m.value)
      } catch {
        continue
      }
      const r = decodeAt(m.topic, m.value, Infinity)
      if (isDecodeFailure(r) && errorOf(r).includes("Expected a timestamp")) continue
      const schema = Result.isSuccess(Schema.decodeUnknownResult(m.topic === "clicks" ? ClickJson : CheckoutJson)(parsed))
      assert.strictEqual(schema, !isDecodeFailure(r), `${m.name}: ${errorOf(r)}`)
    }
  })
  it("never throws", () => {
    const inputs = [
      ...poisonCorpus.map((m) => m.value),
      "{".repeat(1_000_000), "[".repeat(1_000_000) + "]".repeat(1_000_000), `{"a":${"[".repeat(1_000_000)}`,
      `{"click_id":${"{\"a\":".repeat(100_000)}1${"}".repeat(100_000)}}`, "\u0000", "\ud800", "\ufeff{}"
    ]
    for (const text of inputs) {
      assert.isTrue(isDecodeFailure(decodeClick(text, corpusLatestEventTime)), text.slice(0, 40))
      assert.isTrue(isDecodeFailure(decodeCheckout(text, corpusLatestEventTime)), text.slice(0, 40))
    }
  })
})

describe("decoding: the fast path gives exactly what the Schema path gives", () => {
  const agree = (topic: "clicks" | "checkouts", value: string, latest = corpusLatestEventTime) => {
    const decode = topic === "clicks" ? decodeClick : decodeCheckout
    const reference = topic === "clicks" ? schemaDecoders.click : schemaDecoders.checkout
    assert.deepStrictEqual(decode(value, latest), reference(value, latest), value.slice(0, 200))
  }
  it("on the generator's messages", () => {
    const users = makeUsers(1, 50)
    const products = makeProducts(2, 30)
    const sim = makeSimulator({ seed: 7, users, products })
    for (let i = 0; i < 3_000; i++) {
      const m = sim.next(corpusNow + i * 10)
      agree(m.topic, m.value)
    }
  })
  it("on the poison corpus and the near misses, errors word for word", () => {
    for (const m of [...poisonCorpus, ...nearValid]) agree(m.topic, m.value)
  })
  it("on every field replaced by values of every JSON type", () => {
    const values: ReadonlyArray<unknown> = [undefined, null, "", "x", "click", "Success", "Failed", 0, -0, 1, 1.5, -1, 2 ** 53, 9_007_199_254_740_991, 0.999, true, [], {}, "2026-11-23T10:00:00Z", "2026-11-23 10:00:00", "\u0000", "\ud800"]
    const clickFieldNames = ["click_id", "user_id", "product_id", "source", "event_type", "user_agent", "ip_address", "click_timestamp"]
    const checkoutFieldNames = ["checkout_id", "user_id", "product_id", "quantity", "shipping_cost", "discount", "payment_method", "payment_status", "payment_description", "shipping_address", "checkout_timestamp"]
    for (const field of clickFieldNames) for (const v of values) agree("clicks", clickJson({ [field]: v }))
    for (const field of checkoutFieldNames) for (const v of values) agree("checkouts", checkoutJson({ [field]: v }))
  })
  it("on events after the latest accepted event time", () => {
    agree("clicks", clickJson(), corpusNow)
    agree("checkouts", checkoutJson(), corpusNow)
  })
})
