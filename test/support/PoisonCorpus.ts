/**
 * Messages that must be refused at decode (SPEC §1 Limits and Bad input), each one that
 * would otherwise decode and then make PostgreSQL refuse a whole batch, or crash, stall or
 * mislead the engine; and near misses that must still decode. For the decoder's unit tests
 * and for any test that feeds a real source (replay files, Kafka) and checks that every bad
 * message lands in `ingest_errors` while the good ones flow.
 *
 * Event times are near `corpusNow`; decode with `corpusLatestEventTime` (now + 1 day, the
 * default MAX_FUTURE_MS) so that only the far-future ones are refused for their time.
 */

export interface CorpusMessage {
  readonly name: string
  readonly topic: "clicks" | "checkouts"
  readonly value: string
}

export interface PoisonMessage extends CorpusMessage {
  /** a part of the refusal's reason: the field it names, or the class of the problem */
  readonly reason: string
}

/** The processing clock the corpus is written against: 2026-11-23T00:00:00Z. */
export const corpusNow = Date.UTC(2026, 10, 23)
/** corpusNow + 1 day: the latest event time to accept. */
export const corpusLatestEventTime = corpusNow + 86_400_000

const clickFields: Record<string, unknown> = {
  click_id: "c-1", user_id: "u-1", product_id: "p-1", source: "Google", event_type: "view",
  user_agent: "Mozilla/5.0", ip_address: "10.0.0.1", click_timestamp: "2026-11-23T10:00:00.000Z"
}
const checkoutFields: Record<string, unknown> = {
  checkout_id: "k-1", user_id: "u-1", product_id: "p-1", quantity: 2, shipping_cost: 4.5, discount: 0.1,
  payment_method: "Visa", payment_status: "Success", payment_description: "None", shipping_address: "1 Main St",
  checkout_timestamp: "2026-11-23T10:00:00.000Z"
}

/** A valid click as JSON with some fields replaced (`undefined` drops one). */
export const clickJson = (overrides: Record<string, unknown> = {}): string => JSON.stringify({ ...clickFields, ...overrides })
/** A valid checkout as JSON with some fields replaced (`undefined` drops one). */
export const checkoutJson = (overrides: Record<string, unknown> = {}): string => JSON.stringify({ ...checkoutFields, ...overrides })

/** A valid checkout's JSON with one field's value replaced by raw JSON text (`1e400`, `NaN`, …). */
const checkoutWithRaw = (field: string, raw: string): string => {
  const text = checkoutJson({ [field]: "\u0001" })
  return text.replace(`"${field}":"\\u0001"`, `"${field}":${raw}`)
}

/** Deterministic pseudo-random code units below `bound` (xorshift32, fixed seed). */
const randomText = (length: number, bound: number, seed: number): string => {
  let x = seed
  let out = ""
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out += String.fromCharCode((x >>> 0) % bound)
  }
  return out
}

const deep = (n: number) => "[".repeat(n) + "]".repeat(n)

const checkout = (name: string, value: string, reason: string): PoisonMessage => ({ name, topic: "checkouts", value, reason })
const click = (name: string, value: string, reason: string): PoisonMessage => ({ name, topic: "clicks", value, reason })

export const poisonCorpus: ReadonlyArray<PoisonMessage> = [
  // numbers PostgreSQL's columns cannot hold, or that are not JSON numbers
  checkout("quantity past PostgreSQL integer", checkoutJson({ quantity: 3_000_000_000 }), `["quantity"]`),
  checkout("quantity 2147483648", checkoutJson({ quantity: 2_147_483_648 }), `["quantity"]`),
  checkout("quantity not an integer", checkoutJson({ quantity: 1.5 }), `["quantity"]`),
  checkout("quantity 0", checkoutJson({ quantity: 0 }), `["quantity"]`),
  checkout("shipping_cost 1e10 (numeric(12,2) holds 10 integer digits)", checkoutJson({ shipping_cost: 1e10 }), `["shipping_cost"]`),
  checkout("shipping_cost 9999999999.995 (numeric(12,2) rounds it to 1e10)", checkoutJson({ shipping_cost: 9_999_999_999.995 }), `["shipping_cost"]`),
  checkout("shipping_cost 1e400 (Infinity after JSON.parse)", checkoutWithRaw("shipping_cost", "1e400"), `["shipping_cost"]`),
  checkout("shipping_cost -1e400", checkoutWithRaw("shipping_cost", "-1e400"), `["shipping_cost"]`),
  checkout("quantity 1e400", checkoutWithRaw("quantity", "1e400"), `["quantity"]`),
  checkout("NaN literal", checkoutWithRaw("discount", "NaN"), "not JSON"),
  checkout("Infinity literal", checkoutWithRaw("shipping_cost", "Infinity"), "not JSON"),
  checkout("discount 1", checkoutJson({ discount: 1 }), `["discount"]`),
  // strings PostgreSQL text cannot hold
  checkout("NUL as a JSON escape", checkoutJson({ payment_method: "Vi\u0000sa" }), `Expected text without a NUL (\\u0000) character, got one (index 2) at ["payment_method"]`),
  checkout("NUL as a raw character", checkoutJson({ payment_method: "Visa" }).replace("Visa", "Vi\u0000sa"), "not JSON"),
  checkout("NUL in an id", checkoutJson({ checkout_id: "k\u0000" }), `["checkout_id"]`),
  click("NUL in user_agent", clickJson({ user_agent: "\u0000" }), `["user_agent"]`),
  checkout("lone high surrogate as a JSON escape", checkoutJson({ payment_description: "x\ud800" }), `Expected well-formed UTF-16 text, got a lone surrogate (index 1) at ["payment_description"]`),
  checkout("lone low surrogate as a JSON escape", checkoutJson({ shipping_address: "\udc00x" }), `["shipping_address"]`),
  checkout("lone surrogate as a raw character", checkoutJson({ shipping_address: "1 Main St" }).replace("Main", "Ma\ud800in"), `["shipping_address"]`),
  click("lone surrogate in an id", clickJson({ user_id: "\ud83d" }), `["user_id"]`),
  click("surrogates in the wrong order", clickJson({ source: "\ude00\ud83d" }), `["source"]`),
  // lengths: ids are indexed (btree rows hold ~2.7 kB), other text is bounded
  checkout("a 300-character id", checkoutJson({ product_id: "p".repeat(300) }), `["product_id"]`),
  checkout("a 4 KB checkout_id", checkoutJson({ checkout_id: "k".repeat(4096) }), `["checkout_id"]`),
  click("a 257-character click_id", clickJson({ click_id: "c".repeat(257) }), `["click_id"]`),
  checkout("an empty id", checkoutJson({ user_id: "" }), `["user_id"]`),
  checkout("a 5000-character payment_method", checkoutJson({ payment_method: "V".repeat(5000) }), `["payment_method"]`),
  click("a 4097-character source", clickJson({ source: "s".repeat(4097) }), `["source"]`),
  checkout("a huge message (a 1 MB shipping_address)", checkoutJson({ shipping_address: "a".repeat(1_000_000) }), `["shipping_address"]`),
  checkout("an integer id past 2^53", checkoutWithRaw("user_id", "100000000000000000000"), `["user_id"]`),
  // event time
  checkout("far-future time (year 2099)", checkoutJson({ checkout_timestamp: "2099-01-01T00:00:00.000Z" }),
    `event time 2099-01-01T00:00:00.000Z is more than MAX_FUTURE_MS ahead of the clock at ["checkout_timestamp"]`),
  click("far-future click (year 2099, naive form)", clickJson({ click_timestamp: "2099-01-01 00:00:00" }), `ahead of the clock at ["click_timestamp"]`),
  click("1 ms past now + MAX_FUTURE_MS", clickJson({ click_timestamp: "2026-11-24T00:00:00.001Z" }), `ahead of the clock at ["click_timestamp"]`),
  checkout("year 0000", checkoutJson({ checkout_timestamp: "0000-06-01T00:00:00Z" }), `["checkout_timestamp"]`),
  checkout("an offset that leaves year 0001", checkoutJson({ checkout_timestamp: "0001-01-01T00:30:00+01:00" }), `["checkout_timestamp"]`),
  click("an offset that leaves year 9999", clickJson({ click_timestamp: "9999-12-31T23:30:00-01:00" }), `["click_timestamp"]`),
  checkout("an unparseable time", checkoutJson({ checkout_timestamp: "tomorrow" }), `["checkout_timestamp"]`),
  // wrong types
  checkout("quantity a string", checkoutJson({ quantity: "2" }), `["quantity"]`),
  click("source a number", clickJson({ source: 7 }), `["source"]`),
  checkout("user_id a boolean", checkoutJson({ user_id: true }), `["user_id"]`),
  checkout("product_id an object", checkoutJson({ product_id: {} }), `["product_id"]`),
  click("click_timestamp a number", clickJson({ click_timestamp: 1_795_000_000_000 }), `["click_timestamp"]`),
  // missing required fields
  checkout("no checkout_id", checkoutJson({ checkout_id: undefined }), `Missing key at ["checkout_id"]`),
  checkout("no payment_status", checkoutJson({ payment_status: undefined }), `Missing key at ["payment_status"]`),
  click("no click_timestamp", clickJson({ click_timestamp: undefined }), `Missing key at ["click_timestamp"]`),
  click("no user_id", clickJson({ user_id: undefined }), `Missing key at ["user_id"]`),
  // not a JSON object
  checkout("truncated JSON", checkoutJson().slice(0, 60), "not JSON"),
  click("deeply nested JSON (100 000 [)", "[".repeat(100_000), "not JSON"),
  click("deeply nested, balanced JSON array", deep(100_000), "not a JSON object"),
  checkout("deeply nested JSON in a field", checkoutWithRaw("product_id", deep(100_000)), `["product_id"]`),
  checkout("random bytes (Latin-1)", randomText(2048, 256, 0x9e3779b9), "not JSON"),
  click("random UTF-16 code units", randomText(2048, 0x10000, 0x2545f491), "not JSON"),
  click("empty", "", "empty message"),
  click("only whitespace", " \n\t", "empty message"),
  checkout("null", "null", "not a JSON object"),
  checkout("an array", `[${checkoutJson()}]`, "not a JSON object"),
  click("a string", `"click"`, "not a JSON object"),
  click("a number", "42", "not a JSON object")
]

/** Messages at the edge of the limits that must decode. */
export const nearValid: ReadonlyArray<CorpusMessage> = [
  { name: "quantity 2147483647", topic: "checkouts", value: checkoutJson({ quantity: 2_147_483_647 }) },
  { name: "shipping_cost 9999999999.99", topic: "checkouts", value: checkoutJson({ shipping_cost: 9_999_999_999.99 }) },
  { name: "shipping_cost 9999999999.994 (rounds to 9999999999.99)", topic: "checkouts", value: checkoutJson({ shipping_cost: 9_999_999_999.994 }) },
  { name: "shipping_cost 0, discount 0", topic: "checkouts", value: checkoutJson({ shipping_cost: 0, discount: 0 }) },
  { name: "a 256-character id", topic: "checkouts", value: checkoutJson({ checkout_id: "k".repeat(256) }) },
  { name: "a 1-character id", topic: "clicks", value: clickJson({ click_id: "c" }) },
  { name: "a 4096-character payment_method", topic: "checkouts", value: checkoutJson({ payment_method: "V".repeat(4096) }) },
  { name: "a 4096-character user_agent", topic: "clicks", value: clickJson({ user_agent: "u".repeat(4096) }) },
  { name: "an emoji (a valid surrogate pair) as raw text", topic: "clicks", value: clickJson({ source: "Tiktok 👗" }) },
  { name: "an emoji as JSON escapes", topic: "checkouts", value: checkoutJson({ shipping_address: "1 Main St" }).replace("Main", "\\ud83d\\udc57") },
  { name: "non-ASCII as JSON escapes (Python's json.dumps)", topic: "checkouts", value: checkoutJson({ shipping_address: "x" }).replace(`"x"`, `"Stra\\u00dfe 1, K\\u00f6ln"`) },
  { name: "a 256-character id of emoji (128 pairs)", topic: "clicks", value: clickJson({ user_id: "👗".repeat(128) }) },
  { name: "integer ids", topic: "checkouts", value: checkoutJson({ checkout_id: 17, user_id: 100001, product_id: 9007199254740991 }) },
  { name: "integer ids on a click", topic: "clicks", value: clickJson({ click_id: 0, user_id: -5, product_id: 1 }) },
  { name: "the six characters \\u0000 as text (an escaped backslash)", topic: "checkouts", value: checkoutJson({ payment_method: "\\u0000" }) },
  { name: "event time exactly now + MAX_FUTURE_MS", topic: "clicks", value: clickJson({ click_timestamp: "2026-11-24T00:00:00.000Z" }) },
  { name: "event time years back", topic: "checkouts", value: checkoutJson({ checkout_timestamp: "2001-02-03 04:05:06" }) },
  { name: "event time in year 0001", topic: "checkouts", value: checkoutJson({ checkout_timestamp: "0001-01-01T00:00:00.000Z" }) },
  { name: "the Flink generator's click: no product_id or event_type, naive time", topic: "clicks", value: `{"click_id": 17, "user_id": 100001, "source": "Tiktok", "user_agent": "ua", "ip_address": "1.2.3.4", "click_timestamp": "2026-11-23 12:00:00.250"}` },
  { name: "null optionals", topic: "clicks", value: clickJson({ product_id: null, event_type: null, user_agent: null, ip_address: null }) },
  { name: "unknown fields are ignored, whatever they hold", topic: "checkouts", value: checkoutWithRaw("extra", `["\\u0000", "${"x".repeat(10_000)}", 1e400]`) }
]
