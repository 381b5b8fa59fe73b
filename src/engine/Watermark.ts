/**
 * The engine's event-time clock (SPEC §2).
 *
 * Each input partition's watermark is the largest event time it has delivered minus the
 * out-of-orderness bound. The engine's watermark is the minimum over partitions that are not
 * idle, and never moves backwards. A partition is idle once it has delivered nothing for the
 * idle timeout of processing time *and* has nothing left to read (for a source that says so
 * again and again, it said so at least I after the last delivery), or once its bounded input
 * has ended. When every partition is idle the watermark advances to the largest event time
 * seen (the out-of-orderness allowance is given up); when every partition has ended it is +∞.
 * Processing time is passed in by the caller, who reads it from Effect's `Clock`.
 */

export interface PartitionState {
  readonly id: string
  /** largest event time delivered, −∞ before the first */
  maxEventTime: number
  /** processing time of the last delivery (or of registration), moved on by the time the engine read nothing */
  lastActivity: number
  /** the source says there is more to read right now */
  backlog: boolean
  /** processing time of the source's latest report that nothing is left to read (−∞: none) */
  caughtUpAt: number
  /** bounded input exhausted: nothing will ever come again */
  ended: boolean
}

export interface WatermarkOptions {
  /** W: bounded out-of-orderness in ms */
  readonly outOfOrdernessMs: number
  /** I: idle timeout in ms of processing time */
  readonly idleTimeoutMs: number
  /**
   * The source reports caught-up partitions again and again (`UnboundedSource.reportsCaughtUp`):
   * idle needs such a report at least I after the last delivery, not only I of silence.
   */
  readonly reportsCaughtUp?: boolean
}

export class WatermarkTracker {
  private readonly partitions = new Map<string, PartitionState>()
  private watermark = -Infinity
  private maxSeen = -Infinity

  constructor(readonly options: WatermarkOptions) {}

  /** Starts tracking a partition; one that never delivers holds the watermark at −∞ until idle. */
  register(id: string, now: number): PartitionState {
    let p = this.partitions.get(id)
    if (p === undefined) {
      p = { id, maxEventTime: -Infinity, lastActivity: now, backlog: true, caughtUpAt: -Infinity, ended: false }
      this.partitions.set(id, p)
    }
    return p
  }

  /** Stops tracking a partition (revoked from this process). */
  unregister(id: string): void {
    this.partitions.delete(id)
  }

  /** Restores a watermark (after a restart); it only ever moves forward. */
  restore(watermark: number, maxEventTime: number): void {
    if (watermark > this.watermark) this.watermark = watermark
    if (maxEventTime > this.maxSeen) this.maxSeen = maxEventTime
  }

  /** Records an event's time as the engine takes it. Cheap: called once per event. */
  observe(p: PartitionState, eventTime: number): void {
    if (eventTime > p.maxEventTime) {
      p.maxEventTime = eventTime
      if (eventTime > this.maxSeen) this.maxSeen = eventTime
    }
  }

  /** The partition delivered events at processing time `now` (it is not idle). */
  touch(p: PartitionState, now: number): void {
    p.lastActivity = now
  }

  /**
   * The engine read nothing for `ms` of processing time (it waited for a sink, or restored
   * tasks): the partition could not deliver, so that time is not idleness. Its last activity
   * moves on.
   */
  notReadFor(p: PartitionState, ms: number): void {
    p.lastActivity += ms
  }

  /** What the source says is left to read, at processing time `now`. */
  setBacklog(p: PartitionState, backlog: boolean, now: number): void {
    p.backlog = backlog
    if (!backlog) p.caughtUpAt = now
  }

  end(p: PartitionState): void {
    p.ended = true
    p.backlog = false
  }

  isIdle(p: PartitionState, now: number): boolean {
    if (p.ended) return true
    const I = this.options.idleTimeoutMs
    return !p.backlog && now - p.lastActivity >= I && (this.options.reportsCaughtUp !== true || p.caughtUpAt - p.lastActivity >= I)
  }

  get largestEventTime(): number {
    return this.maxSeen
  }

  /** The current watermark, advanced as far as the partitions allow at processing time `now`. */
  current(now: number): number {
    let min = Infinity
    let active = 0
    let allEnded = this.partitions.size > 0
    for (const p of this.partitions.values()) {
      if (!p.ended) allEnded = false
      if (this.isIdle(p, now)) continue
      active++
      const w = p.maxEventTime - this.options.outOfOrdernessMs
      if (w < min) min = w
    }
    const candidate = allEnded ? Infinity : active === 0 ? this.maxSeen : min
    if (candidate > this.watermark) this.watermark = candidate
    return this.watermark
  }

  /** The watermark as last computed, without re-evaluating idleness. */
  get value(): number {
    return this.watermark
  }

  snapshot(): ReadonlyArray<Readonly<PartitionState>> {
    return [...this.partitions.values()]
  }
}
