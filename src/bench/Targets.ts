/** The targets of issue 12, each with the value measured in this run and whether it is met. */
export interface Target {
  readonly target: string
  readonly value: number
  readonly met: boolean
}

export interface TargetInputs {
  readonly engine_events_per_s: number
  readonly e2e_events_per_s: number
  readonly e2e_vs_ceiling: number
  readonly p99_latency_ms: number
  readonly watermark_delay_ms: number
  readonly bytes_per_held_click: number
  readonly peak_rss_mb: number
  readonly start_ms: number
  readonly lake_tap_cost: number
}

const atLeast = (value: number, min: number, target: string): Target => ({ target, value, met: Number.isFinite(value) && value >= min })
const atMost = (value: number, max: number, target: string): Target => ({ target, value, met: Number.isFinite(value) && value <= max })

export const targets = (m: TargetInputs): Record<string, Target> => ({
  engine_events_per_s: atLeast(m.engine_events_per_s, 500_000, "≥ 500000 events/s, every worker"),
  e2e_events_per_s: atLeast(m.e2e_events_per_s, 150_000, "≥ 150000 events/s"),
  e2e_vs_ceiling: atLeast(m.e2e_vs_ceiling, 0.7, "≥ 0.7 of the end-to-end ceiling"),
  p99_latency_ms: atMost(m.p99_latency_ms, m.watermark_delay_ms + 500, `≤ W + 500 ms = ${m.watermark_delay_ms + 500} ms`),
  bytes_per_held_click: atMost(m.bytes_per_held_click, 200, "≤ 200 bytes"),
  peak_rss_mb: atMost(m.peak_rss_mb, 450, "≤ 450 MB with 1 M clicks held"),
  start_ms: atMost(m.start_ms, 1_000, "≤ 1000 ms to the first event"),
  lake_tap_cost: atMost(m.lake_tap_cost, 0.15, "≤ 0.15")
})
