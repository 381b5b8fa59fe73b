/**
 * The input port: where messages come from, partition by partition, and how the engine says
 * "written up to here". Adapters (Kafka, files, the generator, in-memory) live in `sources/`.
 *
 * A *bounded* source (files) is pulled partition by partition, so the engine reads exactly
 * the partition it needs next and memory stays flat however the files are skewed. An
 * *unbounded* source (Kafka, the generator) pushes batches as they arrive.
 */
import type { Effect, Stream } from "effect"

/** One message as read: its coordinates and its bytes as text. */
export interface Envelope {
  readonly topic: string
  readonly partition: number
  readonly offset: number
  readonly key: string | null
  readonly value: string
  /**
   * `value`'s bytes as read (UTF-8), when the source has them at hand: a view into its read
   * buffer, so a tap copies them instead of encoding `value` again. Only taps may read it, as
   * the message is accepted; the task drops it then, so no message kept for later (a pending
   * probe, a late output) pins the source's buffer.
   */
  bytes?: Uint8Array | undefined
}

export interface PartitionRef {
  readonly topic: string
  readonly partition: number
}

export const partitionId = (p: PartitionRef): string => `${p.topic}/${p.partition}`

/** Records read from one partition; `backlog`: more is already waiting to be read. */
export interface Records {
  readonly _tag: "Records"
  readonly topic: string
  readonly partition: number
  readonly records: ReadonlyArray<Envelope>
  readonly backlog: boolean
  /** the partition's end offset when known (lag = highWatermark − next offset) */
  readonly highWatermark?: number
}

/** A bounded partition has no more records. */
export interface End {
  readonly _tag: "End"
  readonly topic: string
  readonly partition: number
}

/** The partitions this process reads changed (Kafka group rebalance). */
export interface Assigned {
  readonly _tag: "Assigned"
  readonly partitions: ReadonlyArray<PartitionRef>
}

export interface Revoked {
  readonly _tag: "Revoked"
  readonly partitions: ReadonlyArray<PartitionRef>
}

export type SourceEvent = Records | End | Assigned | Revoked

/** Where a partition has been consumed up to: the next offset to read. */
export interface Position {
  readonly topic: string
  readonly partition: number
  readonly nextOffset: number
  /** the oldest offset whose event may still be needed in keyed state (≤ nextOffset) */
  readonly restartOffset?: number
  /** the largest event time the partition has delivered, epoch ms */
  readonly maxEventTime?: number
}

/** A position as committed with the rows it produced, read back at start. */
export interface CommittedPosition {
  readonly topic: string
  readonly partition: number
  readonly nextOffset: number
  readonly restartOffset: number
  readonly maxEventTime: number
  readonly watermark: number
}

export interface BoundedSource<E> {
  readonly _tag: "Bounded"
  readonly name: string
  readonly partitions: ReadonlyArray<PartitionRef>
  /** where each partition is read from (e.g. `file:/path`), names its rejected messages; default: `name` */
  readonly origins?: ReadonlyArray<string>
  /** The next records of partition `index` (of `partitions`), or its End. */
  readonly pull: (index: number) => Effect.Effect<Records | End, E>
}

export interface UnboundedSource<E> {
  readonly _tag: "Unbounded"
  readonly name: string
  /** partitions of each topic, when known: work on event time across users waits for all of them */
  readonly partitionsPerTopic?: number
  /**
   * The source says again, every so often while it can read, that a quiet partition has
   * nothing left to read (an empty `Records`, `backlog` false). Then a partition is idle only
   * once such a report comes at least I after its last delivery: a source that cannot read
   * (a broker that hangs) stops reporting, and no partition goes idle meanwhile, so the
   * watermark does not pass events still waiting to be read. Without it a report is good
   * until the next delivery.
   */
  readonly reportsCaughtUp?: boolean
  /** Assigned/Revoked first, then records as they arrive. */
  readonly events: Stream.Stream<SourceEvent, E>
  /** Called after the sink has durably written everything up to `positions`. */
  readonly commit: (positions: ReadonlyArray<Position>) => Effect.Effect<void>
}

export type Source<E> = BoundedSource<E> | UnboundedSource<E>

/**
 * Where a partition of `source` is read from, as its rejected messages and refused rows name it
 * (`ingest_errors.input`): a bounded source's `origins` entry (a replay's file), else its name.
 */
export const originOf = <E>(source: Source<E>): ((ref: PartitionRef) => string) => {
  const origins = new Map<string, string>()
  if (source._tag === "Bounded") source.partitions.forEach((ref, i) => origins.set(partitionId(ref), source.origins?.[i] ?? source.name))
  return (ref) => origins.get(partitionId(ref)) ?? source.name
}
