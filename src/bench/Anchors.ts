/**
 * The anchors, measured on the same messages as the engine: `JSON.parse` of every message
 * (the floor of any decoder) and our Schema decode of every message.
 */
import { decodeCheckout, decodeClick } from "../domain/Events.ts"
import type { Backlog } from "./Backlog.ts"
import { rate } from "./Common.ts"

export const measureAnchors = (backlog: Backlog): { readonly json_parse_events_per_s: number; readonly decode_events_per_s: number } => {
  const { clicks, checkouts } = backlog.values
  let sink = 0
  let t0 = performance.now()
  for (const v of clicks) sink += JSON.parse(v) ? 1 : 0
  for (const v of checkouts) sink += JSON.parse(v) ? 1 : 0
  const parseMs = performance.now() - t0
  t0 = performance.now()
  for (const v of clicks) sink += decodeClick(v) ? 1 : 0
  for (const v of checkouts) sink += decodeCheckout(v) ? 1 : 0
  const decodeMs = performance.now() - t0
  if (sink !== 2 * (clicks.length + checkouts.length)) throw new Error("an anchor lost messages")
  return { json_parse_events_per_s: rate(backlog.events, parseMs), decode_events_per_s: rate(backlog.events, decodeMs) }
}
