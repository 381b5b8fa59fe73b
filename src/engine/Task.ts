/**
 * A task: the unit of state and of ownership (ARCHITECTURE: Tasks). Task n owns partition n
 * of every input topic (co-partitioned by key), and with them its own event-time clock
 * (watermark over its partitions only), its aligner, one key group per job (keyed state and
 * event-time timers), the outputs it has not handed on yet and its positions. It is created
 * (and restored) when its partitions are assigned and dropped, with all of it, when they are
 * revoked: nothing outside a task holds its state, so dropping it writes nothing more.
 *
 * This is the pure, synchronous step of the engine: records in, outputs and positions out,
 * processing time passed in. Only the driver (`Runner.ts`) calls it, from one fiber: a task
 * is an actor whose mailbox is the driver's loop. The one asynchronous part of a step, reading
 * back what re-read inputs left behind (`Recall`), is done by the driver between `release` and
 * `advance`.
 */
import { InputAligner } from "./InputAligner.ts"
import { type KeyedInput, KeyGroup, type KeyGroupStats } from "./KeyedState.ts"
import { OffsetBlocks } from "./Positions.ts"
import type { CommittedPosition, Envelope, PartitionRef, Records } from "./Source.ts"
import { partitionId } from "./Source.ts"
import type { AnyJob, Decoded, Rejected, TaskClaim, TaskPosition } from "./Topology.ts"
import { type PartitionState, WatermarkTracker } from "./Watermark.ts"

export interface TaskOptions {
  /** W */
  readonly outOfOrdernessMs: number
  /** I */
  readonly idleTimeoutMs: number
  /** bounded inputs wait for every partition that has not ended (a replay's result depends only on its files) */
  readonly bounded: boolean
  /** unbounded inputs: above this many buffered records, stop waiting for empty partitions */
  readonly alignmentBufferLimit: number
  /** the source reports caught-up partitions again and again (`UnboundedSource.reportsCaughtUp`) */
  readonly reportsCaughtUp?: boolean
}

/** A message that is not an event, on its way through the aligner with the reason. */
interface Undecodable {
  readonly message: Envelope
  readonly error: string
}

/** A message on its way through the aligner: decoded (the common case, no wrapper), or not. */
type Item<Ev> = Decoded<Ev> | Undecodable

const isDecoded = <Ev>(item: Item<Ev>): item is Decoded<Ev> => (item as Undecodable).error === undefined

export interface Lane {
  readonly ref: PartitionRef
  readonly id: string
  /** where its messages are read (the source's name, or the file): names rejected messages */
  readonly origin: string
  readonly index: number
  readonly watermark: PartitionState
  /** the next offset to release */
  nextOffset: number
  /** the next offset to read: taps (stateless jobs) have seen everything below it */
  acceptedNext: number
  /** released something (or, with taps, read something) since the last batch */
  dirty: boolean
  /** per job: offsets below this were processed before a restart and are re-read only to rebuild state */
  readonly committedNext: Array<number>
  /** per job: the restart offset committed before a restart (undefined: none, reading starts at the log's start) */
  readonly committedRestart: Array<number | undefined>
  readonly blocks: OffsetBlocks
  /** has delivered any message */
  delivered: boolean
}

/** What one job of a task hands to its sink at a flush. */
export interface TaskOutput<O> {
  readonly outputs: Array<O>
  readonly rejected: Array<Rejected>
  readonly positions: Array<TaskPosition>
}

/** Where reading of `lane` started after a restart: the oldest committed restart offset (0 when a job has none). */
const seekFrom = (lane: Lane): number => {
  let from = Infinity
  for (const r of lane.committedRestart) {
    if (r === undefined) return 0
    if (r < from) from = r
  }
  return from === Infinity ? 0 : from
}

export class Task<Ev> {
  readonly tracker: WatermarkTracker
  private readonly aligner: InputAligner<Item<Ev>>
  private readonly lanes = new Map<string, Lane>()
  private readonly laneByIndex: Array<Lane> = []
  private readonly groups: Array<KeyGroup<unknown, unknown, unknown>>
  private outputs: Array<Array<unknown>>
  private rejected: Array<Rejected> = []
  private inputs: Array<Array<KeyedInput<unknown>>>
  private replayed: Array<Array<KeyedInput<unknown>>>
  /** per job: whether inputs re-read before its committed position rebuild its state */
  private readonly rebuilds: Array<boolean>
  /**
   * the jobs that are stateless taps: each input goes to its operator as it is read (with no
   * key state, no alignment and no watermark to wait for), while the message is still in the
   * CPU's cache; their positions are the read position
   */
  private readonly tapJobs: Array<number>
  /** the other jobs: their inputs are released in event-time order through the aligner */
  private readonly keyedJobs: Array<number>
  /**
   * per job: inputs wait in `inputs` for the step's end while re-read inputs may still come
   * (they rebuild state first, once recalled); otherwise each goes to its key group at once
   */
  private readonly buffering: Array<boolean>
  /** the watermark the key groups were last advanced to */
  private advancedTo = -Infinity
  /** the watermark of the last positions handed on */
  private flushedWatermark = -Infinity
  private now = 0

  constructor(
    readonly id: number,
    readonly claim: TaskClaim,
    private readonly jobs: ReadonlyArray<AnyJob<Ev, unknown>>,
    private readonly options: TaskOptions
  ) {
    this.tracker = new WatermarkTracker({
      outOfOrdernessMs: options.outOfOrdernessMs, idleTimeoutMs: options.idleTimeoutMs, reportsCaughtUp: options.reportsCaughtUp === true
    })
    this.aligner = new InputAligner<Item<Ev>>((item) => isDecoded(item) ? item.ts : undefined)
    const operators = jobs.map((job) => typeof job.operator === "function" ? job.operator(id) : job.operator)
    this.groups = operators.map((operator) => new KeyGroup(operator))
    this.outputs = jobs.map(() => [])
    this.inputs = jobs.map(() => [])
    this.replayed = jobs.map(() => [])
    this.rebuilds = jobs.map((job) => job.recall?.recall !== undefined)
    this.tapJobs = operators.flatMap((operator, j) => operator.stateless === true ? [j] : [])
    this.keyedJobs = operators.flatMap((operator, j) => operator.stateless === true ? [] : [j])
    this.buffering = jobs.map(() => false)
  }

  get epoch(): number {
    return this.claim.epoch
  }

  readonly isIdle = (p: PartitionState, now: number): boolean => this.tracker.isIdle(p, now)

  /** The task's partitions, in the order they were added. */
  get partitions(): ReadonlyArray<Lane> {
    return this.laneByIndex
  }

  lane(ref: PartitionRef): Lane | undefined {
    return this.lanes.get(partitionId(ref))
  }

  /** Starts tracking a partition of this task (idempotent). */
  addLane(ref: PartitionRef, origin: string, now: number): Lane {
    const id = partitionId(ref)
    let lane = this.lanes.get(id)
    if (lane === undefined) {
      const index = this.aligner.addPartition()
      lane = {
        // dirty from the start: every partition gets a position (and the task's watermark) at the first flush
        ref, id, origin, index, watermark: this.tracker.register(id, now), nextOffset: 0, acceptedNext: 0, dirty: true,
        committedNext: this.jobs.map(() => 0), committedRestart: this.jobs.map(() => undefined), blocks: new OffsetBlocks(), delivered: false
      }
      this.lanes.set(id, lane)
      this.laneByIndex[index] = lane
    }
    return lane
  }

  /**
   * Resumes a partition where job `job`'s committed output ends: what it read before is
   * re-read only to rebuild state. The committed watermark is this task's own: it never
   * moves another task's clock.
   */
  restore(job: number, position: CommittedPosition): void {
    const lane = this.lanes.get(partitionId(position))
    if (lane === undefined) return
    lane.committedNext[job] = Math.max(lane.committedNext[job]!, position.nextOffset)
    if (this.rebuilds[job] && position.nextOffset > 0) this.buffering[job] = true
    lane.committedRestart[job] = position.restartOffset
    this.tracker.restore(position.watermark, -Infinity)
  }

  /** Decodes and buffers a batch of one partition (processing time `now`). */
  accept(records: Records, now: number, decode: (envelope: Envelope) => Decoded<Ev> | string): Lane | undefined {
    const lane = this.lanes.get(partitionId(records))
    if (lane === undefined) return undefined
    // only events count as activity, when they arrive: a partition delivering nothing but
    // undecodable messages goes idle like a quiet one and never holds the watermark
    this.tracker.setBacklog(lane.watermark, records.backlog, now)
    const n = records.records.length
    if (n === 0) return lane
    lane.delivered = true
    const items: Array<Item<Ev>> = new Array(n)
    const taps = this.tapJobs
    let events = 0
    for (let i = 0; i < n; i++) {
      const envelope = records.records[i]!
      const decoded = decode(envelope)
      if (typeof decoded === "string") items[i] = { message: envelope, error: decoded }
      else {
        items[i] = decoded
        events++
        for (let t = 0; t < taps.length; t++) {
          const j = taps[t]!
          if (envelope.offset < lane.committedNext[j]!) continue // written before a restart
          const input = this.jobs[j]!.input(decoded.event, envelope)
          if (input !== undefined) this.groups[j]!.tap(input, this.tracker.value, envelope)
        }
      }
      if (envelope.bytes !== undefined) envelope.bytes = undefined // for the taps only (see Envelope)
    }
    const last = records.records[n - 1]!.offset + 1
    if (last > lane.acceptedNext) lane.acceptedNext = last
    if (taps.length > 0) lane.dirty = true
    if (events > 0) this.tracker.touch(lane.watermark, now)
    this.aligner.push(lane.index, items)
    return lane
  }

  /** The engine read nothing for `ms` of processing time (it waited for a sink, or restored tasks): no partition's idleness counts it. */
  notReadFor(ms: number): void {
    for (const lane of this.laneByIndex) this.tracker.notReadFor(lane.watermark, ms)
  }

  /** A bounded partition has no more records. */
  end(ref: PartitionRef): void {
    const lane = this.lanes.get(partitionId(ref))
    if (lane !== undefined) this.aligner.end(lane.index)
  }

  /** Partitions that must be read before anything more can be released (bounded inputs). */
  starving(): Array<Lane> {
    return this.aligner.starving().map((i) => this.laneByIndex[i]!)
  }

  // ---- the step: release aligned records, judge them against the watermark, process

  private readonly onRelease = (index: number, item: Item<Ev>): void => {
    const lane = this.laneByIndex[index]!
    const envelope = item.message
    const offset = envelope.offset
    const committed = lane.committedNext
    if (!isDecoded(item)) {
      if (offset >= committed[0]!) this.rejected.push({ envelope, origin: lane.origin, error: item.error })
    } else {
      const decoded = item
      const watermark = this.tracker.value
      const jobs = this.jobs
      const keyed = this.keyedJobs
      for (let k = 0; k < keyed.length; k++) {
        const j = keyed[k]!
        const input = jobs[j]!.input(decoded.event, envelope)
        if (input === undefined) continue
        // judged against the watermark before this event moves it (its own time never makes it late)
        if (offset < committed[j]!) { if (this.rebuilds[j]) this.replayed[j]!.push({ key: decoded.key, input, watermark }) }
        else if (this.buffering[j]) this.inputs[j]!.push({ key: decoded.key, input, watermark, message: envelope })
        else this.groups[j]!.apply(decoded.key, input, watermark, envelope)
      }
      const p = lane.watermark
      if (decoded.ts > p.maxEventTime) {
        this.tracker.observe(p, decoded.ts)
        this.tracker.current(this.now)
      }
      lane.blocks.record(offset, decoded.ts)
    }
    if (offset + 1 > lane.nextOffset) lane.nextOffset = offset + 1
    lane.dirty = true
  }

  private readonly onEnd = (index: number): void => {
    this.tracker.end(this.laneByIndex[index]!.watermark)
  }

  /**
   * Which empty partitions hold back the others. Files: every one not ended. Kafka: one that
   * is not idle and either has a backlog (there is more to read that would come first) or has
   * never delivered (a topic produced a moment after another); a caught-up partition is not
   * waited for, so a quiet one does not delay the rest. Never once so much is buffered that
   * waiting would grow memory without bound.
   */
  private readonly mustWait = (index: number): boolean => {
    if (this.options.bounded) return true
    const lane = this.laneByIndex[index]!
    return this.aligner.size < this.options.alignmentBufferLimit &&
      (lane.watermark.backlog || !lane.delivered) && !this.tracker.isIdle(lane.watermark, this.now)
  }

  /** Releases what alignment allows at processing time `now`, judging each event against the watermark. */
  release(now: number): void {
    this.now = now
    this.aligner.drain(this.onRelease, this.onEnd, this.mustWait)
  }

  /** Inputs of job `job` re-read from before its committed position, waiting to be recalled. */
  takeReplayed(job: number): Array<KeyedInput<unknown>> {
    const r = this.replayed[job]!
    if (r.length > 0) this.replayed[job] = []
    return r
  }

  /**
   * Rebuilds job `job`'s state from recalled inputs (one per re-read input, in order;
   * undefined: it left nothing). They are judged against the restored watermark, not again.
   */
  applyRecalled(job: number, replayed: ReadonlyArray<KeyedInput<unknown>>, recalled: ReadonlyArray<unknown>): void {
    const watermark = this.tracker.value
    const restored: Array<KeyedInput<unknown>> = []
    for (let i = 0; i < recalled.length; i++) {
      const input = recalled[i]
      if (input !== undefined) restored.push({ key: replayed[i]!.key, input, watermark })
    }
    this.collect(job, this.groups[job]!.process(restored, this.advancedTo))
  }

  /** Feeds the released inputs to every job and fires the timers due at the watermark. */
  advance(now: number): void {
    const wm = this.tracker.current(now)
    const moved = wm > this.advancedTo
    if (moved) this.advancedTo = wm
    for (let j = 0; j < this.jobs.length; j++) {
      const inputs = this.inputs[j]!
      if (inputs.length > 0) this.inputs[j] = []
      this.collect(j, this.groups[j]!.process(inputs, wm))
    }
  }

  private collect(job: number, out: Array<unknown>): void {
    if (out.length === 0) return
    const buffer = this.outputs[job]!
    for (let i = 0; i < out.length; i++) buffer.push(out[i])
  }

  /** Outputs and rejected messages waiting to be handed on. */
  get pending(): number {
    let n = this.rejected.length
    for (const o of this.outputs) n += o.length
    return n
  }

  get watermark(): number {
    return this.tracker.value
  }

  /**
   * Takes what each job hands to its sink now: its outputs, the rejected messages (the first
   * job's), and the positions of every partition that moved, with this job's restart offset.
   */
  flush(now: number, final = false): Array<TaskOutput<unknown>> {
    for (let j = 0; j < this.buffering.length; j++) {
      // every partition read past the job's committed position: nothing more to rebuild
      if (this.buffering[j] && this.inputs[j]!.length === 0 && this.replayed[j]!.length === 0 &&
        this.laneByIndex.every((lane) => lane.nextOffset >= lane.committedNext[j]!)) this.buffering[j] = false
    }
    for (let j = 0; j < this.groups.length; j++) this.collect(j, this.groups[j]!.flush(now, final))
    const watermark = this.tracker.value
    // a watermark that moved is committed too (work on event time across tasks reads it),
    // even when no partition released anything new (all idle, or the input ended)
    const clockMoved = watermark !== this.flushedWatermark
    this.flushedWatermark = watermark
    const moved = this.laneByIndex.filter((lane) => lane.dirty || clockMoved)
    for (const lane of moved) lane.dirty = false
    const result = this.jobs.map((job, j): TaskOutput<unknown> => {
      const cutoff = watermark - job.retainMs - 1
      const tap = this.tapJobs.includes(j)
      const positions = moved.map((lane): TaskPosition => {
        const done = tap ? lane.acceptedNext : lane.nextOffset
        const next = Math.max(done, lane.committedNext[j]!)
        // what was not read yet (from where reading started) may still be needed in state:
        // the restart offset never passes the read position
        const read = Math.max(done, seekFrom(lane))
        return {
          topic: lane.ref.topic,
          partition: lane.ref.partition,
          nextOffset: next,
          restartOffset: Math.min(lane.blocks.restartOffset(cutoff, read), next),
          maxEventTime: lane.watermark.maxEventTime,
          watermark,
          task: this.id,
          epoch: this.claim.epoch
        }
      })
      const outputs = this.outputs[j]!
      this.outputs[j] = []
      return { outputs, rejected: j === 0 ? this.rejected : [], positions }
    })
    this.rejected = []
    let longest = 0
    for (const job of this.jobs) if (job.retainMs > longest) longest = job.retainMs
    for (const lane of moved) lane.blocks.prune(watermark - longest - 1)
    return result
  }

  /** Puts back a flush that was not handed on (a stop while waiting for the sink): nothing is lost. */
  putBack(job: number, part: TaskOutput<unknown>): void {
    this.outputs[job] = [...part.outputs, ...this.outputs[job]!]
    if (part.rejected.length > 0) this.rejected = [...part.rejected, ...this.rejected]
    for (const p of part.positions) {
      const lane = this.lanes.get(partitionId(p))
      if (lane !== undefined) lane.dirty = true
    }
  }

  /** The task is dropped: its operators let go of what they hold. */
  dispose(): void {
    for (const g of this.groups) g.dispose()
  }

  /** Keyed state of job `job`, for the status page. */
  state(job: number): KeyGroupStats {
    return this.groups[job]!.stats()
  }

  /** A key's state in job `job`, for tests. */
  keyState(job: number, key: string): unknown {
    return this.groups[job]!.get(key)
  }
}
