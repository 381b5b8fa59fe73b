/**
 * The store's input events (SPEC §1) and their decoding from message bytes.
 *
 * Decoding never throws: a message is either a typed event or a `DecodeFailure` saying, in
 * words, what is wrong with it, which the job writes to `ingest_errors`.
 */
import { Result, Schema, SchemaGetter, SchemaIssue } from "effect"
import { parseTimestamp } from "./Timestamp.ts"

/** An id: a non-empty string, or a JSON integer read as its decimal string (the pandas-fed generator). */
const Id = Schema.Union([
  Schema.NonEmptyString,
  Schema.Int.pipe(Schema.decodeTo(Schema.String, {
    decode: SchemaGetter.transform((n: number) => String(n)),
    encode: SchemaGetter.transform((s: string) => Number(s))
  }))
])

/**
 * An event time is a string here; `parseTimestamp` reads it once after the structure is
 * decoded (as a Schema refinement plus transform it cost more than all other fields together).
 */
const EventTime = Schema.String
const TIMESTAMP_EXPECTED = "Expected a timestamp like 2026-11-23T10:15:00Z or 2026-11-23 10:15:00"

const OptionalText = Schema.optional(Schema.NullOr(Schema.String))

export const ClickJson = Schema.Struct({
  click_id: Id,
  user_id: Id,
  product_id: Schema.optional(Schema.NullOr(Id)),
  source: Schema.String,
  event_type: Schema.optional(Schema.NullOr(Schema.Literals(["click", "view", "add_to_cart"]))),
  user_agent: OptionalText,
  ip_address: OptionalText,
  click_timestamp: EventTime
})

export const CheckoutJson = Schema.Struct({
  checkout_id: Id,
  user_id: Id,
  product_id: Id,
  quantity: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)),
  shipping_cost: Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0)),
  discount: Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1, exclusiveMaximum: true })),
  payment_method: Schema.String,
  payment_status: Schema.Literals(["Success", "Failed"]),
  payment_description: Schema.NullOr(Schema.String),
  shipping_address: OptionalText,
  checkout_timestamp: EventTime
})

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

const failure = (error: string): DecodeFailure => ({ _tag: "DecodeFailure", error })
const formatIssue = SchemaIssue.makeFormatterDefault()
/** One line: `Expected ... at ["field"]; Missing key at ["other"]`. */
const describe = (issue: SchemaIssue.Issue): string => formatIssue(issue).replace(/\n\s*at /g, " at ").replace(/\n\s*/g, "; ")
// the hot path stops at the first problem; a failure is decoded again to name every problem
const decodeClickJson = Schema.decodeUnknownResult(ClickJson)
const decodeCheckoutJson = Schema.decodeUnknownResult(CheckoutJson)
const explainClick = Schema.decodeUnknownResult(ClickJson, { errors: "all" })
const explainCheckout = Schema.decodeUnknownResult(CheckoutJson, { errors: "all" })

const explain = (decode: (u: unknown) => Result.Result<unknown, { readonly issue: SchemaIssue.Issue }>, value: unknown, timestampField: string): DecodeFailure => {
  const result = decode(value)
  const structure = Result.isFailure(result) ? describe(result.failure.issue) : ""
  const ts = (value as Record<string, unknown>)[timestampField]
  const time = typeof ts === "string" && parseTimestamp(ts) === undefined ? `${TIMESTAMP_EXPECTED} at ["${timestampField}"]` : ""
  return failure([structure, time].filter((x) => x !== "").join("; "))
}

/** JSON text to a plain object, or a failure for empty, malformed and non-object messages. */
const parseObject = (text: string): object | DecodeFailure => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    return failure(text.trim() === "" ? "empty message" : `not JSON: ${(e as Error).message}`)
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return failure(`not a JSON object: got ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}`)
  }
  return value
}

const isFailure = (x: unknown): x is DecodeFailure => (x as DecodeFailure)._tag === "DecodeFailure"

export const decodeClick = (text: string, _latestEventTime = Infinity): Click | DecodeFailure => {
  const parsed = parseObject(text)
  if (isFailure(parsed)) return parsed
  const result = decodeClickJson(parsed)
  if (Result.isFailure(result)) return explain(explainClick, parsed, "click_timestamp")
  const j = result.success
  const ts = parseTimestamp(j.click_timestamp)
  if (ts === undefined) return explain(explainClick, parsed, "click_timestamp")
  return {
    clickId: j.click_id,
    userId: j.user_id,
    productId: j.product_id ?? null,
    source: j.source,
    eventType: j.event_type ?? "click",
    userAgent: j.user_agent ?? null,
    ipAddress: j.ip_address ?? null,
    ts
  }
}

export const decodeCheckout = (text: string, _latestEventTime = Infinity): Checkout | DecodeFailure => {
  const parsed = parseObject(text)
  if (isFailure(parsed)) return parsed
  const result = decodeCheckoutJson(parsed)
  if (Result.isFailure(result)) return explain(explainCheckout, parsed, "checkout_timestamp")
  const j = result.success
  const ts = parseTimestamp(j.checkout_timestamp)
  if (ts === undefined) return explain(explainCheckout, parsed, "checkout_timestamp")
  return {
    checkoutId: j.checkout_id,
    userId: j.user_id,
    productId: j.product_id,
    quantity: j.quantity,
    shippingCost: j.shipping_cost,
    discount: j.discount,
    paymentMethod: j.payment_method,
    paymentStatus: j.payment_status,
    paymentDescription: j.payment_description,
    shippingAddress: j.shipping_address ?? null,
    ts
  }
}

export { isFailure as isDecodeFailure }
