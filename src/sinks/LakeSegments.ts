/**
 * What the lake sink takes: a task's events already encoded as the bytes DuckDB reads, one
 * segment per partition and hour of event time. The tap encodes each event as it is read
 * (`SegmentBuilder.add`) and hands the segments on at its task's flush, with the positions.
 *
 * Why not rows: a row object and the message string it points at lived until the task's
 * flush, long enough to survive a young-generation collection and be copied; encoded at once,
 * the row is garbage before the next collection and the bytes are off the heap.
 */
import type { RawEventRow } from "../domain/Rows.ts"
import { JsonLines } from "./JsonLines.ts"

export interface LakeSegment {
  readonly topic: string
  readonly partition: number
  readonly kind: RawEventRow["kind"]
  /** hours since the epoch of its events' time (UTC) */
  readonly hour: number
  /** its events, in offset order */
  readonly lines: JsonLines
}

const hourOf = (ts: number): number => Math.floor(ts / 3_600_000)

/** Encodes rows into segments; rows come in runs of one partition and mostly one hour. */
export class SegmentBuilder {
  private segments = new Map<string, LakeSegment>()
  private last: LakeSegment | undefined

  /** An event's row (`json`: its JSON; `bytes`: that JSON's UTF-8 bytes, when at hand). */
  add(kind: RawEventRow["kind"], topic: string, partition: number, offset: number, ts: number, json: string, bytes: Uint8Array | undefined): void {
    let segment = this.last
    const hour = hourOf(ts)
    if (segment === undefined || segment.hour !== hour || segment.partition !== partition || segment.topic !== topic) {
      const id = `${topic}\u0000${partition}\u0000${hour}`
      segment = this.segments.get(id)
      if (segment === undefined) {
        segment = { topic, partition, kind, hour, lines: new JsonLines() }
        this.segments.set(id, segment)
      }
      this.last = segment
    }
    segment.lines.append(offset, ts, json, bytes)
  }

  get size(): number {
    return this.segments.size
  }

  /** The segments so far; the builder starts empty again. */
  take(): Array<LakeSegment> {
    const out = [...this.segments.values()]
    this.segments = new Map()
    this.last = undefined
    return out
  }

  /** Lets go of the bytes not handed on (the task is dropped). */
  discard(): void {
    for (const s of this.take()) s.lines.release()
  }
}

/** `rows` as the segments a tap would hand on (tests, and callers with rows in hand). */
export const segmentsOf = (rows: ReadonlyArray<RawEventRow>): Array<LakeSegment> => {
  const b = new SegmentBuilder()
  for (const r of rows) b.add(r.kind, r.topic, r.partition, r.offset, r.ts, r.json, undefined)
  return b.take()
}
