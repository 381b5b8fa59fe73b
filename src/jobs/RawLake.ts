/**
 * The raw-lake tap (SPEC §6): every decoded click and checkout, late or not, goes to the
 * lake sink as it is read. A stateless job: nothing to rebuild after a restart, its progress
 * is what its sink has renamed into place.
 */
import type { RawEventRow } from "../domain/Rows.ts"
import type { KeyedOperator } from "../engine/KeyedState.ts"
import type { Envelope } from "../engine/Source.ts"
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

export const rawRow = (event: ShopEvent, message: Envelope): RawEventRow => {
  if (isClick(event)) {
    const c = event
    const plain = readsAlike(message.value)
    return {
      kind: "click", topic: message.topic, partition: message.partition, offset: message.offset, ts: c.ts,
      json: plain ? message.value : JSON.stringify({
        click_id: c.clickId, user_id: c.userId, product_id: c.productId, source: c.source, event_type: c.eventType,
        user_agent: c.userAgent, ip_address: c.ipAddress
      })
    }
  }
  const k = event
  const plain = readsAlike(message.value)
  return {
    kind: "checkout", topic: message.topic, partition: message.partition, offset: message.offset, ts: k.ts,
    json: plain ? message.value : JSON.stringify({
      checkout_id: k.checkoutId, user_id: k.userId, product_id: k.productId, quantity: k.quantity, shipping_cost: k.shippingCost,
      discount: k.discount, payment_method: k.paymentMethod, payment_status: k.paymentStatus,
      payment_description: k.paymentDescription, shipping_address: k.shippingAddress
    })
  }
}

/**
 * The tap of one task: each event encoded as it is read (the task feeds taps straight from
 * decoding, while the message is still in the CPU's cache), the bytes handed on as segments
 * at the task's flush (with its positions, so a segment is written exactly when they are).
 */
export const tap = (): KeyedOperator<null, RawEventRow, LakeSegment> => {
  const segments = new SegmentBuilder()
  return {
    stateless: true,
    create: () => null,
    onElement: (_state, row) => segments.add(row),
    onTimer: () => {},
    isEmpty: () => true,
    measure: () => [0, 0],
    onFlush: (_now, emit) => {
      if (segments.size > 0) for (const s of segments.take()) emit(s)
    },
    dispose: () => segments.discard()
  }
}

export const node = <E>(sink: Sink<LakeSegment, E>, recall?: Recall<RawEventRow, E>): JobNode<ShopEvent, null, RawEventRow, LakeSegment, E> => ({
  name: JOB,
  input: rawRow,
  operator: tap,
  retainMs: -Infinity,
  sink,
  recall
})
