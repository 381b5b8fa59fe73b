/**
 * The store's input events (SPEC §1) and their decoding from message bytes.
 *
 * Decoding never throws: a message is either a typed event or a `DecodeFailure` saying, in
 * words, what is wrong with it, which the job writes to `ingest_errors`.
 *
 * A decoded event is also one PostgreSQL can store (SPEC §1 Limits): every string is text
 * PostgreSQL can hold (no NUL, no lone surrogate) and short enough for a btree index row,
 * `quantity` fits an `integer`, `shipping_cost` a `numeric(12,2)`, and the event time is
 * a 4-digit-year instant not too far ahead of the clock. One such value in a batch would
 * otherwise make PostgreSQL refuse the whole batch, again on every retry.
 */
import { Result, Schema, SchemaGetter, SchemaIssue } from "effect"
import { firstUnstorable, isStorableText, storableText } from "./StorableText.ts"
import { formatTimestamp, parseTimestamp } from "./Timestamp.ts"

/** The longest id, in UTF-16 code units (ids are indexed: a btree row holds about 2.7 kB). */
export const MAX_ID_LENGTH = 256
/** The longest other string, in UTF-16 code units. */
export const MAX_TEXT_LENGTH = 4096
/** PostgreSQL `integer`. */
export const MAX_QUANTITY = 2_147_483_647
/**
 * `shipping_cost` must be below this: `numeric(12,2)` holds at most 10 integer digits after
 * rounding to 2 decimals, so 9999999999.995 (which the sink sends as written) rounds to
 * 10000000000.00 and overflows. Every double below it prints as a decimal below it.
 */
export const SHIPPING_COST_BOUND = 9_999_999_999.995

/** No NUL and no lone surrogate: what PostgreSQL `text` can hold. */
const isStorable = Schema.makeFilter((s: string) => {
  const i = firstUnstorable(s)
  return i === -1 ? true : s.charCodeAt(i) === 0
    ? `Expected text without a NUL (\\u0000) character, got one (index ${i})`
    : `Expected well-formed UTF-16 text, got a lone surrogate (index ${i})`
})

/** A JSON integer id read as its decimal string (the pandas-fed generator); safe integers only. */
const IntId = Schema.Number.check(Schema.isInt({ expected: "a safe integer (at most 2^53 - 1 either way)" })).pipe(Schema.decodeTo(Schema.String, {
  decode: SchemaGetter.transform((n: number) => String(n)),
  encode: SchemaGetter.transform((s: string) => Number(s))
}))

/** An id: a string of 1 to 256 characters, or a JSON safe integer read as its decimal string. */
const Id = Schema.Union([Schema.String.check(Schema.isBetweenLength(1, MAX_ID_LENGTH), isStorable), IntId])
const Text = Schema.String.check(Schema.isMaxLength(MAX_TEXT_LENGTH), isStorable)
const Quantity = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1), Schema.isLessThanOrEqualTo(MAX_QUANTITY))
const ShippingCost = Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThan(SHIPPING_COST_BOUND))

/**
 * The same without the limits, for the hot path. There the limits are checked by hand after
 * the Schema decode (`clickWithinLimits`, `checkoutWithinLimits`: a few comparisons per
 * field); only a message that fails goes through `ClickJson` / `CheckoutJson`, to name every
 * problem. As Schema checks on the hot path the limits made decoding 10 to 20% slower.
 */
const IdShape = Schema.Union([Schema.NonEmptyString, IntId])
const QuantityShape = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
const ShippingCostShape = Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))

/**
 * An event time is a string here; `parseTimestamp` reads it once after the structure is
 * decoded (as a Schema refinement plus transform it cost more than all other fields together).
 */
const EventTime = Schema.String
const TIMESTAMP_EXPECTED = "Expected a timestamp like 2026-11-23T10:15:00Z or 2026-11-23 10:15:00, years 0001 to 9999"

const clickFields = <I extends Schema.Top, T extends Schema.Top>(id: I, text: T) => ({
  click_id: id,
  user_id: id,
  product_id: Schema.optional(Schema.NullOr(id)),
  source: text,
  event_type: Schema.optional(Schema.NullOr(Schema.Literals(["click", "view", "add_to_cart"]))),
  user_agent: Schema.optional(Schema.NullOr(text)),
  ip_address: Schema.optional(Schema.NullOr(text)),
  click_timestamp: EventTime
})

const checkoutFields = <I extends Schema.Top, T extends Schema.Top, Q extends Schema.Top, S extends Schema.Top>(
  id: I, text: T, quantity: Q, shippingCost: S
) => ({
  checkout_id: id,
  user_id: id,
  product_id: id,
  quantity,
  shipping_cost: shippingCost,
  discount: Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1, exclusiveMaximum: true })),
  payment_method: text,
  payment_status: Schema.Literals(["Success", "Failed"]),
  payment_description: Schema.NullOr(text),
  shipping_address: Schema.optional(Schema.NullOr(text)),
  checkout_timestamp: EventTime
})

/** A click as SPEC §1 has it, limits included. */
export const ClickJson = Schema.Struct(clickFields(Id, Text))
/** A checkout as SPEC §1 has it, limits included. */
export const CheckoutJson = Schema.Struct(checkoutFields(Id, Text, Quantity, ShippingCost))
const ClickShape = Schema.Struct(clickFields(IdShape, Schema.String))
const CheckoutShape = Schema.Struct(checkoutFields(IdShape, Schema.String, QuantityShape, ShippingCostShape))

/**
 * True when no string parsed from `text` can hold a NUL or a lone surrogate: JSON.parse makes
 * one only from the same character in the text (and a raw NUL is not JSON) or from a `\u`
 * escape. Two scans of the message instead of two per string (each ~20 ns, even when short);
 * a message with escapes (Python's json.dumps writes non-ASCII so) has its strings checked.
 */
const plainText = (text: string): boolean => text.indexOf("\\u") === -1 && text.isWellFormed()
/** `id` is non-empty already. */
const idOk = (id: string, plain: boolean): boolean => id.length <= MAX_ID_LENGTH && (plain || isStorableText(id))
const textOk = (s: string | null | undefined, plain: boolean): boolean =>
  s == null || (s.length <= MAX_TEXT_LENGTH && (plain || isStorableText(s)))

export type EventType = "click" | "view" | "add_to_cart"

export interface Click {
  readonly clickId: string
  readonly userId: string
  readonly productId: string | null
  readonly source: string
  readonly eventType: EventType
  readonly userAgent: string | null
  readonly ipAddress: string | null
  /** epoch ms */
  readonly ts: number
}

export interface Checkout {
  readonly checkoutId: string
  readonly userId: string
  readonly productId: string
  readonly quantity: number
  readonly shippingCost: number
  readonly discount: number
  readonly paymentMethod: string
  readonly paymentStatus: "Success" | "Failed"
  readonly paymentDescription: string | null
  readonly shippingAddress: string | null
  /** epoch ms */
  readonly ts: number
}

/** Why a message is not an event, in words for `ingest_errors.error`. */
export interface DecodeFailure {
  readonly _tag: "DecodeFailure"
  readonly error: string
}

/** The error text goes to PostgreSQL too: JSON.parse quotes the start of the bad input, NULs and all. */
const failure = (error: string): DecodeFailure => ({ _tag: "DecodeFailure", error: storableText(error) })
const formatIssue = SchemaIssue.makeFormatterDefault()
/** One line: `Expected ... at ["field"]; Missing key at ["other"]`. */
const describe = (issue: SchemaIssue.Issue): string => formatIssue(issue).replace(/\n\s*at /g, " at ").replace(/\n\s*/g, "; ")
// the hot path decodes the shape and stops at its first problem; a failure is decoded again,
// limits included, to name every problem
const decodeClickShape = Schema.decodeUnknownResult(ClickShape)
const decodeCheckoutShape = Schema.decodeUnknownResult(CheckoutShape)
const explainClick = Schema.decodeUnknownResult(ClickJson, { errors: "all" })
const explainCheckout = Schema.decodeUnknownResult(CheckoutJson, { errors: "all" })

const tooFarAhead = (ts: number, timestampField: string): string =>
  `event time ${formatTimestamp(ts)} is more than MAX_FUTURE_MS ahead of the clock at ["${timestampField}"]`

/** What is wrong with the event time, or "". */
const timeProblem = (ts: unknown, timestampField: string, latestEventTime: number): string => {
  if (typeof ts !== "string") return "" // the structure's problem, already said
  const ms = parseTimestamp(ts)
  if (ms === undefined) return `${TIMESTAMP_EXPECTED} at ["${timestampField}"]`
  return ms > latestEventTime ? tooFarAhead(ms, timestampField) : ""
}

const explain = (
  decode: (u: unknown) => Result.Result<unknown, { readonly issue: SchemaIssue.Issue }>,
  value: object,
  timestampField: string,
  latestEventTime: number
): DecodeFailure => {
  const result = decode(value)
  const structure = Result.isFailure(result) ? describe(result.failure.issue) : ""
  const time = timeProblem((value as Record<string, unknown>)[timestampField], timestampField, latestEventTime)
  const error = [structure, time].filter((x) => x !== "").join("; ")
  // "" only if the hand-written limits and the Schema disagree (a bug): still refused, still said
  return failure(error === "" ? "not a valid event (outside SPEC §1 limits)" : error)
}

/**
 * The fast path: a parsed object read field by field with `typeof`, building nothing but the
 * event. It accepts only what the Schema accepts, giving the same event (a test holds it to
 * that over the generators' messages and the poison corpus); anything else returns undefined
 * and takes the Schema path, which decides and names the problem.
 * Schema's decode was a third of the time spent per event.
 */
type Fields = Record<string, unknown>
/** An id as the Schema reads it: a non-empty string, or a safe integer as its decimal string; else undefined. */
const idOf = (v: unknown): string | undefined =>
  typeof v === "string" ? (v.length > 0 ? v : undefined) : Number.isSafeInteger(v) ? String(v) : undefined
const isOptionalText = (v: unknown): v is string | null | undefined => v == null || typeof v === "string"
const isFiniteNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v)

const fastClick = (o: Fields): Click | undefined => {
  const clickId = idOf(o["click_id"]), userId = idOf(o["user_id"]), product = o["product_id"], source = o["source"]
  const eventType = o["event_type"], userAgent = o["user_agent"], ipAddress = o["ip_address"], time = o["click_timestamp"]
  const productId = product == null ? null : idOf(product)
  if (clickId === undefined || userId === undefined || productId === undefined || typeof source !== "string") return undefined
  if (!(eventType == null || eventType === "click" || eventType === "view" || eventType === "add_to_cart")) return undefined
  if (!isOptionalText(userAgent) || !isOptionalText(ipAddress) || typeof time !== "string") return undefined
  const ts = parseTimestamp(time)
  if (ts === undefined) return undefined
  return {
    clickId, userId, productId, source, eventType: eventType ?? "click",
    userAgent: userAgent ?? null, ipAddress: ipAddress ?? null, ts
  }
}

const fastCheckout = (o: Fields): Checkout | undefined => {
  const checkoutId = idOf(o["checkout_id"]), userId = idOf(o["user_id"]), productId = idOf(o["product_id"]), quantity = o["quantity"]
  const shippingCost = o["shipping_cost"], discount = o["discount"], paymentMethod = o["payment_method"], paymentStatus = o["payment_status"]
  const paymentDescription = o["payment_description"], shippingAddress = o["shipping_address"], time = o["checkout_timestamp"]
  if (checkoutId === undefined || userId === undefined || productId === undefined) return undefined
  if (!Number.isSafeInteger(quantity) || (quantity as number) < 1) return undefined
  if (!isFiniteNumber(shippingCost) || shippingCost < 0 || !isFiniteNumber(discount) || discount < 0 || discount >= 1) return undefined
  if (typeof paymentMethod !== "string" || (paymentStatus !== "Success" && paymentStatus !== "Failed")) return undefined
  // payment_description's key is required (null or text); shipping_address's is optional
  if (!(paymentDescription === null || typeof paymentDescription === "string") || !isOptionalText(shippingAddress) || typeof time !== "string") return undefined
  const ts = parseTimestamp(time)
  if (ts === undefined) return undefined
  return {
    checkoutId, userId, productId, quantity: quantity as number, shippingCost, discount, paymentMethod, paymentStatus,
    paymentDescription, shippingAddress: shippingAddress ?? null, ts
  }
}

const clickFieldsWithinLimits = (c: Click, plain: boolean): boolean =>
  idOk(c.clickId, plain) && idOk(c.userId, plain) && (c.productId === null || idOk(c.productId, plain)) &&
  textOk(c.source, plain) && textOk(c.userAgent, plain) && textOk(c.ipAddress, plain)

const checkoutFieldsWithinLimits = (c: Checkout, plain: boolean): boolean =>
  idOk(c.checkoutId, plain) && idOk(c.userId, plain) && idOk(c.productId, plain) &&
  c.quantity <= MAX_QUANTITY && c.shippingCost < SHIPPING_COST_BOUND &&
  textOk(c.paymentMethod, plain) && textOk(c.paymentDescription, plain) && textOk(c.shippingAddress, plain)

/** JSON text to a plain object, or a failure for empty, malformed and non-object messages. */
const parseObject = (text: string): object | DecodeFailure => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    // a SyntaxError, or a RangeError from nesting deeper than the parser goes
    return failure(text.trim() === "" ? "empty message" : `not JSON: ${e instanceof Error ? e.message : String(e)}`)
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return failure(`not a JSON object: got ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}`)
  }
  return value
}

const isFailure = (x: unknown): x is DecodeFailure => (x as DecodeFailure)._tag === "DecodeFailure"

/** The last line of defence of "decoding never throws": no known input gets here. */
const unexpected = (e: unknown): DecodeFailure => failure(`cannot decode: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`)

/**
 * A click, or why the message is not one. `latestEventTime` is the latest event time accepted
 * (epoch ms): the caller passes its clock's now + MAX_FUTURE_MS.
 */
export const decodeClick = (text: string, latestEventTime: number = Infinity): Click | DecodeFailure =>
  clickOf(text, latestEventTime, true)

const clickOf = (text: string, latestEventTime: number, tryFast: boolean): Click | DecodeFailure => {
  try {
    const parsed = parseObject(text)
    if (isFailure(parsed)) return parsed
    const fast = tryFast ? fastClick(parsed as Fields) : undefined
    if (fast !== undefined && clickFieldsWithinLimits(fast, plainText(text))) {
      return fast.ts > latestEventTime ? failure(tooFarAhead(fast.ts, "click_timestamp")) : fast
    }
    // the Schema path: integer ids, and every message the fast path does not take
    const result = decodeClickShape(parsed)
    const ts = Result.isSuccess(result) ? parseTimestamp(result.success.click_timestamp) : undefined
    if (Result.isFailure(result) || ts === undefined) return explain(explainClick, parsed, "click_timestamp", latestEventTime)
    const j = result.success
    const click: Click = {
      clickId: j.click_id, userId: j.user_id, productId: j.product_id ?? null, source: j.source, eventType: j.event_type ?? "click",
      userAgent: j.user_agent ?? null, ipAddress: j.ip_address ?? null, ts
    }
    if (!clickFieldsWithinLimits(click, plainText(text))) return explain(explainClick, parsed, "click_timestamp", latestEventTime)
    return ts > latestEventTime ? failure(tooFarAhead(ts, "click_timestamp")) : click
  } catch (e) {
    return unexpected(e)
  }
}

/**
 * A checkout, or why the message is not one. `latestEventTime` is the latest event time
 * accepted (epoch ms): the caller passes its clock's now + MAX_FUTURE_MS.
 */
export const decodeCheckout = (text: string, latestEventTime: number = Infinity): Checkout | DecodeFailure =>
  checkoutOf(text, latestEventTime, true)

const checkoutOf = (text: string, latestEventTime: number, tryFast: boolean): Checkout | DecodeFailure => {
  try {
    const parsed = parseObject(text)
    if (isFailure(parsed)) return parsed
    const fast = tryFast ? fastCheckout(parsed as Fields) : undefined
    if (fast !== undefined && checkoutFieldsWithinLimits(fast, plainText(text))) {
      return fast.ts > latestEventTime ? failure(tooFarAhead(fast.ts, "checkout_timestamp")) : fast
    }
    const result = decodeCheckoutShape(parsed)
    const ts = Result.isSuccess(result) ? parseTimestamp(result.success.checkout_timestamp) : undefined
    if (Result.isFailure(result) || ts === undefined) return explain(explainCheckout, parsed, "checkout_timestamp", latestEventTime)
    const j = result.success
    const checkout: Checkout = {
      checkoutId: j.checkout_id, userId: j.user_id, productId: j.product_id, quantity: j.quantity, shippingCost: j.shipping_cost,
      discount: j.discount, paymentMethod: j.payment_method, paymentStatus: j.payment_status, paymentDescription: j.payment_description,
      shippingAddress: j.shipping_address ?? null, ts
    }
    if (!checkoutFieldsWithinLimits(checkout, plainText(text))) return explain(explainCheckout, parsed, "checkout_timestamp", latestEventTime)
    return ts > latestEventTime ? failure(tooFarAhead(ts, "checkout_timestamp")) : checkout
  } catch (e) {
    return unexpected(e)
  }
}

/** The decoders without their fast path: the reference the fast path is tested against. */
export const schemaDecoders = {
  click: (text: string, latestEventTime: number = Infinity) => clickOf(text, latestEventTime, false),
  checkout: (text: string, latestEventTime: number = Infinity) => checkoutOf(text, latestEventTime, false)
}

export { isFailure as isDecodeFailure }
