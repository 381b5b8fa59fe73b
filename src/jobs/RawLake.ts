/**
 * The raw-lake tap (SPEC §6): every decoded click and checkout, late or not, goes to the
 * lake sink as it is read. A stateless job: nothing to rebuild after a restart, its progress
 * is what its sink has renamed into place.
 */
import type { KeyedOperator } from "../engine/KeyedState.ts"
import type { JobNode, Recall, Sink } from "../engine/Topology.ts"
import { type LakeSegment, SegmentBuilder } from "../sinks/LakeSegments.ts"
import { isClick, type ShopEvent } from "./Attribution.ts"

export const JOB = "lake"

/**
 * The message's own JSON is handed to the lake unless it holds a `\u` escape (a lone
 * surrogate escape would make the lake's JSON reader refuse the whole file); then the decoded
 * fields are written as plain JSON. The common case: no copy, no re-encoding.
 */
const readsAlike = (raw: string): boolean => !raw.includes("\\u")

/** The decoded fields as plain JSON, for a message the lake's reader would not take as it is. */
const plainJson = (event: ShopEvent): string => {
  if (isClick(event)) {
    const c = event
    return JSON.stringify({
      click_id: c.clickId, user_id: c.userId, product_id: c.productId, source: c.source, event_type: c.eventType,
      user_agent: c.userAgent, ip_address: c.ipAddress
    })
  }
  const k = event
  return JSON.stringify({
    checkout_id: k.checkoutId, user_id: k.userId, product_id: k.productId, quantity: k.quantity, shipping_cost: k.shippingCost,
    discount: k.discount, payment_method: k.paymentMethod, payment_status: k.paymentStatus,
    payment_description: k.paymentDescription, shipping_address: k.shippingAddress
  })
}

/**
 * The tap of one task: each event encoded as it is read (the task feeds taps straight from
 * decoding, while the message is still in the CPU's cache), the bytes handed on as segments
 * at the task's flush (with its positions, so a segment is written exactly when they are).
 */
export const tap = (): KeyedOperator<null, ShopEvent, LakeSegment> => {
  const segments = new SegmentBuilder()
  return {
    stateless: true,
    create: () => null,
    onElement: (_state, event, ctx) => {
      // a tap is fed as messages are read: the message is at hand, with its bytes when the
      // source has them: copied, not encoded again, unless they are not valid UTF-8 (a
      // U+FFFD in the text), when the text is written instead
      const m = ctx.message!
      const raw = m.value
      const kind = isClick(event) ? "click" : "checkout"
      if (!readsAlike(raw)) segments.add(kind, m.topic, m.partition, m.offset, event.ts, plainJson(event), undefined)
      else segments.add(kind, m.topic, m.partition, m.offset, event.ts, raw, m.bytes !== undefined && !raw.includes("\uFFFD") ? m.bytes : undefined)
    },
    onTimer: () => {},
    isEmpty: () => true,
    measure: () => [0, 0],
    onFlush: (_now, emit) => {
      if (segments.size > 0) for (const s of segments.take()) emit(s)
    },
    dispose: () => segments.discard()
  }
}

/** The job: its input is the event itself (the tap reads the message beside it); a stateless job recalls positions only. */
export const node = <E>(sink: Sink<LakeSegment, E>, recall?: Pick<Recall<ShopEvent, E>, "positions">): JobNode<ShopEvent, null, ShopEvent, LakeSegment, E> => ({
  name: JOB,
  input: (event) => event,
  operator: tap,
  retainMs: -Infinity,
  sink,
  recall
})
