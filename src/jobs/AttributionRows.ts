/**
 * The lookup join and the rows of SPEC §5, a pure step of the attribution job: a join result
 * becomes one `checkout_attribution` row, enriched with the user's gender and the product's
 * name, brand, category and money; a late event becomes one `late_events` row; a rejected
 * message one `ingest_errors` row. Each row keeps where its message was read, so a row that
 * PostgreSQL refuses can still be recorded as an ingest error. Dimensions come in as lookups.
 */
import { amounts } from "../domain/Money.ts"
import type { AttributionRow, IngestErrorRow, LateEventRow, RowOrigin, Sourced } from "../domain/Rows.ts"
import { formatTimestamp } from "../domain/Timestamp.ts"
import type { Envelope, PartitionRef } from "../engine/Source.ts"
import type { Rejected } from "../engine/Topology.ts"
import type { AttributionOutput } from "./Attribution.ts"
import type { ProductDim, UserDim } from "./Dimensions.ts"

export interface Lookups {
  readonly user: (userId: string) => UserDim | undefined
  readonly product: (productId: string) => ProductDim | undefined
}

export interface Rows {
  readonly attribution: Array<Sourced<AttributionRow>>
  readonly late: Array<Sourced<LateEventRow>>
  readonly errors: Array<IngestErrorRow>
  /** checkouts whose user or product was unknown */
  readonly enrichmentMisses: number
  readonly lateClicks: number
  readonly lateCheckouts: number
}

const originOf = (message: Envelope, input: (ref: PartitionRef) => string): RowOrigin => ({
  input: input(message), topic: message.topic, partition: message.partition, offset: message.offset, payload: message.value
})

const lateRow = (message: Envelope, id: string, userId: string, ts: number, watermark: number, recordedAt: string): LateEventRow => ({
  topic: message.topic,
  event_id: id,
  user_id: userId,
  event_timestamp: formatTimestamp(ts),
  watermark: formatTimestamp(watermark),
  partition: message.partition,
  offset: message.offset,
  payload: message.value,
  recorded_at: recordedAt
})

/** A rejected message as its `ingest_errors` row. */
export const errorRow = (r: Rejected, recordedAt: string): IngestErrorRow => ({
  input: r.origin,
  source: r.envelope.topic,
  partition: r.envelope.partition,
  offset: r.envelope.offset,
  payload: r.envelope.value,
  error: r.error,
  recorded_at: recordedAt
})

/**
 * `input`: where a partition's messages were read, the source's name or a replay's file (names
 * a refused row's ingest error, as `Rejected.origin` names a rejected message's).
 */
export const toRows = (
  outputs: ReadonlyArray<AttributionOutput>, rejected: ReadonlyArray<Rejected>, lookups: Lookups, writtenAt: number,
  input: (ref: PartitionRef) => string
): Rows => {
  const written = formatTimestamp(writtenAt)
  // one row per checkout in a statement (an upsert may not touch a row twice); on-time wins
  const byCheckout = new Map<string, Sourced<AttributionRow>>()
  const late: Array<Sourced<LateEventRow>> = []
  let misses = 0, lateClicks = 0, lateCheckouts = 0
  for (const out of outputs) {
    if (out._tag === "LateBuild") {
      const click = out.build
      const message = out.message!
      late.push({ row: lateRow(message, click.id, out.key, click.ts, out.watermark, written), origin: originOf(message, input) })
      lateClicks++
      continue
    }
    const k = out.probe.checkout
    const user = lookups.user(k.userId)
    const product = lookups.product(k.productId)
    if (user === undefined || product === undefined) misses++
    const money = product?.price != null && product.commission_rate != null
      ? amounts(product.price, k.quantity, k.discount, k.shippingCost, product.commission_rate)
      : undefined
    const click = out.match
    const row: AttributionRow = {
      checkout_id: k.checkoutId,
      user_id: k.userId,
      product_id: k.productId,
      quantity: k.quantity,
      shipping_cost: k.shippingCost,
      discount: k.discount,
      payment_method: k.paymentMethod,
      payment_status: k.paymentStatus,
      payment_description: k.paymentDescription,
      shipping_address: k.shippingAddress,
      checkout_timestamp: formatTimestamp(k.ts),
      gender: user?.gender ?? null,
      category: product?.category ?? null,
      product_name: product?.name ?? null,
      brand: product?.brand ?? null,
      total_amount: money?.totalAmount ?? null,
      profit: money?.profit ?? null,
      click_id: click?.id ?? null,
      source: click?.source ?? null,
      click_timestamp: click === undefined ? null : formatTimestamp(click.ts),
      is_late: out.late,
      written_at: written
    }
    const previous = byCheckout.get(k.checkoutId)
    if (previous === undefined || (previous.row.is_late && !row.is_late)) byCheckout.set(k.checkoutId, { row, origin: originOf(out.probe.message, input) })
    if (out.late) {
      const message = out.message ?? out.probe.message
      late.push({ row: lateRow(message, k.checkoutId, k.userId, k.ts, out.watermark, written), origin: originOf(message, input) })
      lateCheckouts++
    }
  }
  return {
    attribution: [...byCheckout.values()],
    late,
    errors: rejected.map((r) => errorRow(r, written)),
    enrichmentMisses: misses,
    lateClicks,
    lateCheckouts
  }
}
