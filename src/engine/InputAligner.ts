/**
 * Orders records across input partitions by event time, as Kafka Streams picks the partition
 * whose head record is oldest. Each partition's own order is kept; among partitions the head
 * with the smallest event time goes first (ties to the partition registered first).
 *
 * A record is released only when every partition the caller says to wait for has something
 * buffered. Bounded inputs (files) wait for every partition that has not ended, so the
 * released sequence, and with it every watermark and every late/on-time decision, depends
 * only on the input, never on how fast each file was read. Unbounded inputs (Kafka) wait for
 * the partitions that are not idle (SPEC §2's rule), so a topic produced a moment after
 * another is merged with it by event time as a replay of the same files would be.
 *
 * A record without an event time (a message that failed to decode) is released as soon as it
 * reaches the head of its partition.
 */

export interface Aligned<R> {
  readonly partition: number
  readonly record: R
}

/**
 * Released records before a lane's head are let go of once there are this many and they are
 * at least half of its array: a lane that never empties (a topic read ahead of the others in
 * event time) would otherwise keep every record it ever released, each promoted and marked
 * by the collector with the message it points at.
 */
const COMPACT_AFTER = 1_024

interface Lane<R> {
  readonly index: number
  /** records from `head` on wait; those before it were released */
  items: Array<R>
  head: number
  /** no record will ever be added */
  ended: boolean
  /** the end was released to the consumer */
  endReleased: boolean
}

export class InputAligner<R> {
  private readonly lanes: Array<Lane<R>> = []

  private total = 0

  constructor(private readonly eventTime: (record: R) => number | undefined) {}

  /** Records buffered across all partitions. */
  get size(): number {
    return this.total
  }

  /** Adds a partition and returns its index. */
  addPartition(): number {
    const index = this.lanes.length
    this.lanes.push({ index, items: [], head: 0, ended: false, endReleased: false })
    return index
  }

  push(partition: number, records: ReadonlyArray<R>): void {
    const lane = this.lanes[partition]!
    if (lane.head === lane.items.length) {
      if (lane.head > 0) { lane.items = []; lane.head = 0 }
    } else if (lane.head >= COMPACT_AFTER && lane.head * 2 >= lane.items.length) {
      lane.items = lane.items.slice(lane.head)
      lane.head = 0
    }
    for (let i = 0; i < records.length; i++) lane.items.push(records[i]!)
    this.total += records.length
  }

  end(partition: number): void {
    this.lanes[partition]!.ended = true
  }

  /** Partitions that must be read before anything more can be released (bounded mode). */
  starving(): Array<number> {
    const out: Array<number> = []
    for (const lane of this.lanes) if (!lane.ended && lane.head === lane.items.length) out.push(lane.index)
    return out
  }

  /** Records a partition's lane still points at, released ones included (what it keeps alive). */
  retained(partition: number): number {
    return this.lanes[partition]!.items.length
  }

  buffered(partition: number): number {
    const lane = this.lanes[partition]!
    return lane.items.length - lane.head
  }

  /**
   * Releases records in order, calling `emit` for each and `onEnd` once per partition whose
   * input ended and was fully released; stops when a partition that `mustWait` for is empty.
   */
  drain(emit: (partition: number, record: R) => void, onEnd: (partition: number) => void, mustWait: (partition: number) => boolean): void {
    const lanes = this.lanes
    for (;;) {
      let best: Lane<R> | undefined
      let bestTime = Infinity
      let blocked = false
      for (let i = 0; i < lanes.length; i++) {
        const lane = lanes[i]!
        if (lane.head === lane.items.length) {
          if (lane.ended) {
            if (!lane.endReleased) { lane.endReleased = true; onEnd(lane.index) }
            continue
          }
          if (mustWait(lane.index)) blocked = true
          continue
        }
        const t = this.eventTime(lane.items[lane.head]!)
        if (t === undefined) {
          // undecodable: no time to order by, let it through now
          this.total--
          emit(lane.index, lane.items[lane.head++]!)
          i--
          continue
        }
        if (best === undefined || t < bestTime) { best = lane; bestTime = t }
      }
      if (blocked || best === undefined) return
      this.total--
      emit(best.index, best.items[best.head++]!)
    }
  }
}
