/**
 * The lookup join and the rows of SPEC §5: a join result becomes one `checkout_attribution`
 * row, enriched with the user's gender and the product's name, brand, category and money; a
 * late event becomes one `late_events` row. Pure: dimensions come in as lookup functions.
 */
import { amounts } from "../domain/Money.ts"
import { formatTimestamp } from "../domain/Timestamp.ts"
import type { Envelope } from "../engine/Source.ts"
import type { AttributionOutput } from "./Attribution.ts"
import type { ProductDim, UserDim } from "./Dimensions.ts"

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

export interface Lookups {
  readonly user: (userId: string) => UserDim | undefined
  readonly product: (productId: string) => ProductDim | undefined
}

export interface Rows {
  readonly attribution: Array<AttributionRow>
  readonly late: Array<LateEventRow>
  /** checkouts whose user or product was unknown */
  readonly enrichmentMisses: number
  readonly lateClicks: number
  readonly lateCheckouts: number
}

const lateRow = (message: Envelope | undefined, topic: string, id: string, userId: string, ts: number, watermark: number, recordedAt: string): LateEventRow => ({
  topic: message?.topic ?? topic,
  event_id: id,
  user_id: userId,
  event_timestamp: formatTimestamp(ts),
  watermark: formatTimestamp(watermark),
  partition: message?.partition ?? -1,
  offset: message?.offset ?? -1,
  payload: message?.value ?? "",
  recorded_at: recordedAt
})

export const toRows = (outputs: ReadonlyArray<AttributionOutput>, lookups: Lookups, writtenAt: number): Rows => {
  const written = formatTimestamp(writtenAt)
  // one row per checkout in a statement (an upsert may not touch a row twice); on-time wins
  const byCheckout = new Map<string, AttributionRow>()
  const late: Array<LateEventRow> = []
  let misses = 0, lateClicks = 0, lateCheckouts = 0
  for (const out of outputs) {
    if (out._tag === "LateBuild") {
      const click = out.build
      late.push(lateRow(out.message, "clicks", click.id, click.userId, click.ts, out.watermark, written))
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
    if (previous === undefined || (previous.is_late && !row.is_late)) byCheckout.set(k.checkoutId, row)
    if (out.late) {
      late.push(lateRow(out.message, "checkouts", k.checkoutId, k.userId, k.ts, out.watermark, written))
      lateCheckouts++
    }
  }
  return { attribution: [...byCheckout.values()], late, enrichmentMisses: misses, lateClicks, lateCheckouts }
}
