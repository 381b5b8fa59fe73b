/**
 * First-click attribution (SPEC §3) bound to the engine: clicks are the join's build side,
 * checkouts its probe side, both keyed by the decoded `user_id` (so a message with no key, or
 * an unexpected one, is routed by what it says), matched by product, within `A` before the
 * checkout.
 */
import type { Checkout } from "../domain/Events.ts"
import { decodeCheckout, decodeClick, isDecodeFailure } from "../domain/Events.ts"
import * as IntervalJoin from "../engine/IntervalJoin.ts"
import type { Decoded, Job } from "../engine/Runner.ts"
import type { Envelope } from "../engine/Source.ts"

/** What keyed state keeps of a click: what matching and the row need, nothing more. */
export interface ClickElement extends IntervalJoin.JoinElement {
  readonly userId: string
  readonly source: string
}

export interface CheckoutElement extends IntervalJoin.JoinElement {
  readonly checkout: Checkout
}

export type AttributionInput = IntervalJoin.JoinInput<ClickElement, CheckoutElement>
export type AttributionOutput = IntervalJoin.JoinOutput<ClickElement, CheckoutElement>

export interface Topics {
  readonly clicks: string
  readonly checkouts: string
}

export interface AttributionOptions {
  readonly topics: Topics
  /** A, in ms */
  readonly windowMs: number
  /** how long a written checkout id is remembered for dedup, after its time, in ms */
  readonly dedupRetentionMs: number
}

export const decode = (topics: Topics) => (envelope: Envelope): Decoded<AttributionInput> | string => {
  if (envelope.topic === topics.clicks) {
    const click = decodeClick(envelope.value)
    if (isDecodeFailure(click)) return click.error
    const element: ClickElement = { id: click.clickId, ts: click.ts, matchKey: click.productId, userId: click.userId, source: click.source }
    return { key: click.userId, ts: click.ts, input: { side: "build", element } }
  }
  if (envelope.topic === topics.checkouts) {
    const checkout = decodeCheckout(envelope.value)
    if (isDecodeFailure(checkout)) return checkout.error
    const element: CheckoutElement = { id: checkout.checkoutId, ts: checkout.ts, matchKey: checkout.productId, checkout }
    return { key: checkout.userId, ts: checkout.ts, input: { side: "probe", element } }
  }
  return `unexpected topic ${envelope.topic}`
}

export const job = (options: AttributionOptions): Job<IntervalJoin.JoinState<ClickElement, CheckoutElement>, AttributionInput, AttributionOutput> => {
  const retentionMs = Math.max(options.dedupRetentionMs, options.windowMs)
  return {
    decode: decode(options.topics),
    operator: IntervalJoin.make<ClickElement, CheckoutElement>({ beforeMs: options.windowMs, retentionMs }),
    retainMs: retentionMs
  }
}
