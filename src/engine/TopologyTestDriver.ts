/**
 * Drives one task of a topology synchronously, in the spirit of Kafka Streams'
 * `TopologyTestDriver`: pipe messages in with explicit event times, move the wall clock (for
 * idleness) separately, and read each job's outputs, the rejected messages, the watermark
 * and any key's state after every step. No fibers, no sinks, no clock service: the same
 * `Task` step the runner drives, with alignment on as in production (an empty partition that
 * has never delivered holds the others back until it is idle).
 */
import type { PartitionRef } from "./Source.ts"
import { Task } from "./Task.ts"
import type { AnyJob, Rejected, Topology } from "./Topology.ts"

export interface TopologyTestDriverOptions {
  /** the task's partitions, registered at the start (default: partition 0 of each topic given) */
  readonly partitions: ReadonlyArray<PartitionRef>
  /** W (default 15 s) */
  readonly outOfOrdernessMs?: number
  /** I (default 30 s) */
  readonly idleTimeoutMs?: number
  /** the wall clock at the start, epoch ms (default 0) */
  readonly wallClock?: number
  /** events more than this ahead of the wall clock are refused (default: no limit) */
  readonly maxFutureMs?: number
  /** replay semantics: wait for every partition that has not ended (default false: Kafka's) */
  readonly bounded?: boolean
}

export class TopologyTestDriver<Ev> {
  private readonly task: Task<Ev>
  private readonly jobs: ReadonlyArray<AnyJob<Ev, unknown>>
  private readonly offsets = new Map<string, number>()
  private readonly collected: Array<Array<unknown>>
  private readonly rejectedMessages: Array<Rejected> = []
  private now: number
  private readonly maxFutureMs: number

  constructor(private readonly topology: Pick<Topology<Ev, unknown>, "decode" | "jobs">, options: TopologyTestDriverOptions) {
    this.jobs = topology.jobs
    this.now = options.wallClock ?? 0
    this.maxFutureMs = options.maxFutureMs ?? Infinity
    const partition = options.partitions[0]?.partition ?? 0
    this.task = new Task<Ev>(partition, { task: partition, epoch: 1 }, topology.jobs, {
      outOfOrdernessMs: options.outOfOrdernessMs ?? 15_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
      bounded: options.bounded ?? false,
      alignmentBufferLimit: Infinity
    })
    this.collected = topology.jobs.map(() => [])
    // as the Kafka source does on assignment: each partition says it is caught up (nothing
    // waiting); one that never delivers still holds the others back until it is idle
    for (const ref of options.partitions) {
      this.task.addLane(ref, "test", this.now)
      this.task.accept({ _tag: "Records", topic: ref.topic, partition: ref.partition, records: [], backlog: false }, this.now, () => "unused")
    }
  }

  /**
   * Delivers one message to `topic` (partition as registered for it, or `partition`), then
   * steps the task. `backlog`: the partition has more waiting (it cannot be idle).
   */
  pipe(topic: string, value: string, options: { readonly partition?: number; readonly key?: string | null; readonly backlog?: boolean } = {}): this {
    const ref = this.task.partitions.find((l) => l.ref.topic === topic && (options.partition === undefined || l.ref.partition === options.partition))?.ref
      ?? { topic, partition: options.partition ?? this.task.id }
    if (this.task.lane(ref) === undefined) this.task.addLane(ref, "test", this.now)
    const id = `${ref.topic}/${ref.partition}`
    const offset = this.offsets.get(id) ?? 0
    this.offsets.set(id, offset + 1)
    const latest = this.now + this.maxFutureMs
    this.task.accept(
      { _tag: "Records", topic: ref.topic, partition: ref.partition, records: [{ topic: ref.topic, partition: ref.partition, offset, key: options.key ?? null, value }], backlog: options.backlog ?? false },
      this.now,
      (envelope) => this.topology.decode(envelope, latest)
    )
    return this.step()
  }

  /** Says `topic` has nothing more to read right now (it may go idle after I). */
  caughtUp(topic: string): this {
    const lane = this.task.partitions.find((l) => l.ref.topic === topic)
    if (lane !== undefined) this.task.accept({ _tag: "Records", topic: lane.ref.topic, partition: lane.ref.partition, records: [], backlog: false }, this.now, () => "unused")
    return this.step()
  }

  /** Moves processing time (idleness) without any input; event time does not move by itself. */
  advanceWallClock(ms: number): this {
    this.now += ms
    return this.step()
  }

  /** Ends every partition (a replay's end of input): the watermark goes to +∞. */
  endOfInput(): this {
    for (const lane of this.task.partitions) this.task.end(lane.ref)
    return this.step()
  }

  private step(): this {
    this.task.release(this.now)
    this.task.advance(this.now)
    const flushed = this.task.flush(this.now)
    flushed.forEach((part, j) => {
      for (const o of part.outputs) this.collected[j]!.push(o)
      for (const r of part.rejected) this.rejectedMessages.push(r)
    })
    return this
  }

  private jobIndex(name: string): number {
    const j = this.jobs.findIndex((job) => job.name === name)
    if (j < 0) throw new Error(`no job ${name}: ${this.jobs.map((job) => job.name).join(", ")}`)
    return j
  }

  /** Everything job `name` has emitted so far, in order. */
  outputs<O = unknown>(name: string): ReadonlyArray<O> {
    return this.collected[this.jobIndex(name)]! as ReadonlyArray<O>
  }

  /** Messages that are not valid events. */
  rejected(): ReadonlyArray<Rejected> {
    return this.rejectedMessages
  }

  /** Key `key`'s state in job `name` (undefined: the key holds nothing). */
  state<S = unknown>(name: string, key: string): S | undefined {
    return this.task.keyState(this.jobIndex(name), key) as S | undefined
  }

  /** Keyed state sizes of job `name`. */
  stateSize(name: string) {
    return this.task.state(this.jobIndex(name))
  }

  get watermark(): number {
    return this.task.watermark
  }

  get wallClock(): number {
    return this.now
  }
}
