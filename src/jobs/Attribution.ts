/**
 * First-click attribution (SPEC §3) bound to the engine: clicks are the join's build side,
 * checkouts its probe side, both keyed by the decoded `user_id` within their task (so a
 * message with no key, or an unexpected one, is keyed by what it says), matched by product,
 * within `A` before the checkout.
 */
import type { Checkout, Click } from "../domain/Events.ts"
import { decodeCheckout, decodeClick, isDecodeFailure } from "../domain/Events.ts"
import * as IntervalJoin from "../engine/IntervalJoin.ts"
import type { Envelope } from "../engine/Source.ts"
import type { Decoded, JobNode, Recall, Sink } from "../engine/Topology.ts"

/** A decoded message of the store: what every job of the topology reads (no wrapper: one object less per event). */
export type ShopEvent = Click | Checkout

export const isClick = (event: ShopEvent): event is Click => (event as Click).clickId !== undefined

/**
 * What keyed state keeps of a click: what matching and the row need, nothing more (its user
 * is the key it is held under).
 */
export interface ClickElement extends IntervalJoin.JoinElement {
  readonly source: string
}

export interface CheckoutElement extends IntervalJoin.JoinElement {
  readonly checkout: Checkout
  /** the message it came from: a row PostgreSQL refuses goes to ingest_errors with it */
  readonly message: Envelope
}

export type AttributionInput = IntervalJoin.JoinInput<ClickElement, CheckoutElement>
export type AttributionOutput = IntervalJoin.JoinOutput<ClickElement, CheckoutElement>
export type AttributionState = IntervalJoin.JoinState<CheckoutElement, string>

/** A held click's columns: its source beside the join's own. */
const clickColumns: IntervalJoin.BuildColumns<ClickElement, string> = {
  keep: (click) => click.source,
  rebuild: (id, ts, matchKey, source) => ({ id, ts, matchKey, source })
}

export interface Topics {
  readonly clicks: string
  readonly checkouts: string
}

export interface AttributionOptions {
  /** A, in ms */
  readonly windowMs: number
  /** how long a written checkout id is remembered for dedup, after its time, in ms */
  readonly dedupRetentionMs: number
}

/** A message of either topic to a store event keyed by its decoded `user_id`, or why it is not one. */
export const decode = (topics: Topics) => (envelope: Envelope, latestEventTime: number): Decoded<ShopEvent> | string => {
  if (envelope.topic === topics.clicks) {
    const click = decodeClick(envelope.value, latestEventTime)
    if (isDecodeFailure(click)) return click.error
    return { key: click.userId, ts: click.ts, event: click, message: envelope }
  }
  if (envelope.topic === topics.checkouts) {
    const checkout = decodeCheckout(envelope.value, latestEventTime)
    if (isDecodeFailure(checkout)) return checkout.error
    return { key: checkout.userId, ts: checkout.ts, event: checkout, message: envelope }
  }
  return `unexpected topic ${envelope.topic}`
}

/** The join's input for a store event. */
export const input = (event: ShopEvent, message: Envelope): AttributionInput => {
  if (isClick(event)) {
    const c = event
    return { side: "build", element: { id: c.clickId, ts: c.ts, matchKey: c.productId, source: c.source } }
  }
  const k = event
  return { side: "probe", element: { id: k.checkoutId, ts: k.ts, matchKey: k.productId, checkout: k, message } }
}

/** How long an input may be needed in state after its time: the window, or the dedup memory. */
export const retainMs = (options: AttributionOptions): number => Math.max(options.dedupRetentionMs, options.windowMs)

export const operator = (options: AttributionOptions) =>
  IntervalJoin.make<ClickElement, CheckoutElement, string>({ beforeMs: options.windowMs, retentionMs: retainMs(options), columns: clickColumns })

/** The job's name: its positions in source_positions, its figures on the status page. */
export const JOB = "attribution"

/** The attribution job as a node of the topology, writing to `sink`. */
export const node = <E>(options: AttributionOptions, sink: Sink<AttributionOutput, E>, recall?: Recall<AttributionInput, E>): JobNode<ShopEvent, AttributionState, AttributionInput, AttributionOutput, E> => ({
  name: JOB,
  input,
  operator: operator(options),
  retainMs: retainMs(options),
  sink,
  recall
})
