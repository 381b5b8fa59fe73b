/**
 * The memory of held clicks, in a process of its own (forked by HeldClicks.ts, with
 * --expose-gc): `clicks` clicks of the simulator (its ids, users, products and sources),
 * decoded as the engine decodes them, fed to the attribution job's keyed state (a `KeyGroup`
 * of its operator) with a watermark W behind the latest click and event times spanning less
 * than the window, so none expires. The heap used after a forced GC, before and after, divided
 * by the clicks held; the process's peak RSS with them held.
 */
import type { Envelope } from "../engine/Source.ts"
import { KeyGroup } from "../engine/KeyedState.ts"
import * as Attribution from "../jobs/Attribution.ts"
import { childConfig, forceGc, peakRssBytes, runChild } from "./Common.ts"
import { simulator } from "./Produce.ts"

export interface HeldClicksConfig {
  readonly clicks: number
  readonly outOfOrdernessMs: number
  readonly windowMs: number
}

const config = childConfig<HeldClicksConfig>()

runChild(async () => {
  const sim = simulator(11)
  const start = Date.parse("2026-11-01T00:00:00Z")
  for (let i = 0; i < 10_000; i++) sim.next(start) // the simulator's pools are built before the baseline
  const group = new KeyGroup<Attribution.AttributionState, Attribution.AttributionInput, Attribution.AttributionOutput>(
    Attribution.operator({ windowMs: config.windowMs, dedupRetentionMs: config.windowMs }))
  const decode = Attribution.decode({ clicks: "clicks", checkouts: "checkouts" })
  const gc = forceGc()
  const before = process.memoryUsage().heapUsed
  // all clicks within 80 % of the window: the oldest is still held when the last arrives
  const step = (config.windowMs * 0.8) / (config.clicks * 1.2)
  let held = 0
  let latest = -Infinity
  let outputs = 0
  for (let i = 0; held < config.clicks; i++) {
    const m = sim.next(Math.floor(start + i * step))
    if (m.topic !== "clicks") continue
    const envelope: Envelope = { topic: "clicks", partition: 0, offset: i, key: m.key, value: m.value }
    const decoded = decode(envelope, Infinity)
    if (typeof decoded === "string") throw new Error(`a generated click does not decode: ${decoded}`)
    latest = Math.max(latest, decoded.ts)
    // as a task does: each input to its key group as it is released, the timers at the step's end
    group.apply(decoded.key, Attribution.input(decoded.event, envelope), latest - config.outOfOrdernessMs, envelope)
    held++
    if (held % 10_000 === 0 || held === config.clicks) outputs += group.advance(latest - config.outOfOrdernessMs).length
  }
  forceGc()
  const after = process.memoryUsage().heapUsed
  const stats = group.stats()
  if (stats.held !== config.clicks || outputs !== 0) throw new Error(`expected ${config.clicks} clicks held and nothing emitted, got ${stats.held} held, ${outputs} outputs`)
  return { before, after, held: stats.held, users: stats.keys, timers: stats.timers, bytesPerHeldClick: (after - before) / stats.held, peakRssBytes: peakRssBytes(), forcedGc: gc }
})
