/**
 * The rows the engine writes (SPEC §5), as the sinks take them: plain records whose fields
 * are the tables' columns. Timestamps are ISO-8601 text, money decimal text.
 */

/** One `shop.checkout_attribution` row. */
export interface AttributionRow {
  readonly checkout_id: string
  readonly user_id: string
  readonly product_id: string
  readonly quantity: number
  readonly shipping_cost: number
  readonly discount: number
  readonly payment_method: string
  readonly payment_status: string
  readonly payment_description: string | null
  readonly shipping_address: string | null
  readonly checkout_timestamp: string
  readonly gender: string | null
  readonly category: string | null
  readonly product_name: string | null
  readonly brand: string | null
  readonly total_amount: string | null
  readonly profit: string | null
  readonly click_id: string | null
  readonly source: string | null
  readonly click_timestamp: string | null
  readonly is_late: boolean
  readonly written_at: string
}

/** One `shop.late_events` row. */
export interface LateEventRow {
  readonly topic: string
  readonly event_id: string
  readonly user_id: string
  readonly event_timestamp: string
  readonly watermark: string
  readonly partition: number
  readonly offset: number
  readonly payload: string
  readonly recorded_at: string
}

/** One `shop.ingest_errors` row: a message that is not a valid event, or that PostgreSQL refused. */
export interface IngestErrorRow {
  /** where it was read: the source's name (`kafka:<group>`) or the file (`file:/path`) */
  readonly input: string
  /** the topic */
  readonly source: string
  readonly partition: number
  readonly offset: number
  readonly payload: string
  readonly error: string
  readonly recorded_at: string
}

/** Where a row's message was read, so a row PostgreSQL refuses can become an ingest error. */
export interface RowOrigin {
  readonly input: string
  readonly topic: string
  readonly partition: number
  readonly offset: number
  readonly payload: string
}

export interface Sourced<R> {
  readonly row: R
  readonly origin: RowOrigin
}

/**
 * One raw event for the lake (SPEC §6): the message's JSON (or, when the raw text holds
 * escapes the lake's JSON reader could read differently, the decoded fields as JSON), its
 * event time as decoded, and where it was read.
 */
export interface RawEventRow {
  readonly kind: "click" | "checkout"
  readonly topic: string
  readonly partition: number
  readonly offset: number
  /** event time, epoch ms */
  readonly ts: number
  readonly json: string
}
