/**
 * What a running job has done so far, for the status page, `/metrics` and the engine_status
 * table. Plain counters bumped once per batch by the runner (never per event through an
 * Effect), read on demand.
 */
import type { KeyedActors, KeyGroupStats } from "./KeyedState.ts"
import type { PartitionRef, Records } from "./Source.ts"
import type { WatermarkTracker } from "./Watermark.ts"

export interface PartitionStats {
  readonly id: string
  readonly topic: string
  readonly partition: number
  /** messages read */
  events: number
  /** next offset to read, as read (not yet necessarily written) */
  readOffset: number
  /** the partition's end, when the source knows it */
  highWatermark: number | undefined
  /** processing time of the last message */
  lastReadAt: number | undefined
}

export interface PartitionView extends Readonly<PartitionStats> {
  readonly maxEventTime: number
  readonly idle: boolean
  readonly lag: number | undefined
}

export interface SinkStats {
  rowsWritten: number
  batches: number
  lastBatchMs: number | undefined
  lastCommitAt: number | undefined
  /** recent batch latencies in ms, newest last */
  readonly recentBatchMs: Array<number>
}

export interface RecentError {
  readonly topic: string
  readonly partition: number
  readonly offset: number
  readonly error: string
  readonly at: number
}

export interface RecentLate {
  readonly topic: string
  readonly id: string
  readonly eventTime: string
  readonly at: number
}

const RECENT = 20

export class RunnerStats {
  readonly partitions = new Map<string, PartitionStats>()
  readonly eventsByTopic = new Map<string, number>()
  /** job-defined counters: late events, ingest errors, enrichment misses, ... */
  readonly counters = new Map<string, number>()
  readonly sink: SinkStats = { rowsWritten: 0, batches: 0, lastBatchMs: undefined, lastCommitAt: undefined, recentBatchMs: [] }
  watermark = -Infinity
  /** the last few rejected messages and late events, newest last, for the status page */
  readonly recentErrors: Array<RecentError> = []
  readonly recentLateEvents: Array<RecentLate> = []
  private tracker: WatermarkTracker | undefined
  private actors: KeyedActors<unknown, unknown, unknown> | undefined

  attach(parts: { readonly tracker: WatermarkTracker; readonly actors: KeyedActors<any, any, any> }): void {
    this.tracker = parts.tracker
    this.actors = parts.actors
  }

  partition(id: string, ref: PartitionRef): void {
    if (!this.partitions.has(id)) {
      this.partitions.set(id, { id, topic: ref.topic, partition: ref.partition, events: 0, readOffset: 0, highWatermark: undefined, lastReadAt: undefined })
    }
  }

  recordRead(ref: PartitionRef, records: Records, now?: number): void {
    const p = this.partitions.get(`${ref.topic}/${ref.partition}`)
    const n = records.records.length
    this.eventsByTopic.set(ref.topic, (this.eventsByTopic.get(ref.topic) ?? 0) + n)
    if (p === undefined) return
    p.events += n
    if (n > 0) {
      p.readOffset = records.records[n - 1]!.offset + 1
      if (now !== undefined) p.lastReadAt = now
    }
    if (records.highWatermark !== undefined) p.highWatermark = records.highWatermark
  }

  count(name: string, n = 1): void {
    if (n !== 0) this.counters.set(name, (this.counters.get(name) ?? 0) + n)
  }

  recentError(e: RecentError): void {
    this.recentErrors.push(e)
    if (this.recentErrors.length > RECENT) this.recentErrors.shift()
  }

  recentLate(e: RecentLate): void {
    this.recentLateEvents.push(e)
    if (this.recentLateEvents.length > RECENT) this.recentLateEvents.shift()
  }

  recordWatermark(watermark: number): void {
    this.watermark = watermark
  }

  recordSinkWrite(rows: number, latencyMs: number, at: number): void {
    this.sink.rowsWritten += rows
    this.sink.batches++
    this.sink.lastBatchMs = latencyMs
    this.sink.lastCommitAt = at
    this.sink.recentBatchMs.push(latencyMs)
    if (this.sink.recentBatchMs.length > 100) this.sink.recentBatchMs.shift()
  }

  get eventsTotal(): number {
    let n = 0
    for (const v of this.eventsByTopic.values()) n += v
    return n
  }

  /** Partitions with their watermark view at processing time `now`. */
  partitionViews(now: number): Array<PartitionView> {
    const views: Array<PartitionView> = []
    const tracked = new Map((this.tracker?.snapshot() ?? []).map((p) => [p.id, p]))
    for (const p of this.partitions.values()) {
      const w = tracked.get(p.id)
      views.push({
        ...p,
        maxEventTime: w?.maxEventTime ?? -Infinity,
        idle: w === undefined ? true : this.tracker!.isIdle(w, now),
        lag: p.highWatermark === undefined ? undefined : Math.max(0, p.highWatermark - p.readOffset)
      })
    }
    return views.sort((a, b) => a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition)
  }

  state(): KeyGroupStats {
    return this.actors?.stats() ?? { keys: 0, held: 0, pending: 0, timers: 0 }
  }
}
