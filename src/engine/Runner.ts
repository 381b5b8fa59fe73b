/**
 * Runs a keyed job over a source into a sink: the dataflow of ARCHITECTURE.md.
 *
 *   source ─► decode ─► align by event time ─► watermark (late or not) ─► key groups ─► sink
 *
 * Work moves in batches: a batch of messages is decoded and aligned with plain loops, the
 * key groups process their share in one call each, and the outputs are buffered until
 * `flushRows` or `flushIntervalMs`, then handed, with the positions they cover, to the sink
 * fiber through a bounded queue: a slow sink slows reading, it never grows a buffer.
 *
 * Processing time is read only from `Clock`, so `TestClock` drives idleness and flushes.
 */
import { Cause, Clock, Deferred, Duration, Effect, Fiber, Queue, Schedule, Stream } from "effect"
import type { Scope } from "effect"
import { InputAligner } from "./InputAligner.ts"
import { type KeyedInput, type KeyedOperator, makeActors } from "./KeyedState.ts"
import { RunnerStats } from "./RunnerStats.ts"
import type { CommittedPosition, Envelope, PartitionRef, Position, Source, SourceEvent } from "./Source.ts"
import { partitionId } from "./Source.ts"
import { type PartitionState, WatermarkTracker } from "./Watermark.ts"

/** A decoded message: routed by `key`, ordered by `ts`. */
export interface Decoded<I> {
  readonly key: string
  readonly ts: number
  readonly input: I
}

/** A message that is not a valid event, with the reason in words. */
export interface Rejected {
  readonly envelope: Envelope
  readonly error: string
}

export interface Job<S, I, O> {
  /** A message to a keyed, timed input, or the reason it is not one. */
  readonly decode: (envelope: Envelope) => Decoded<I> | string
  readonly operator: KeyedOperator<S, I, O>
  /** how long after its event time an input may still be needed in state (sets restart offsets) */
  readonly retainMs: number
}

/**
 * Exactly-once restarts: where each partition's output is written up to, and how to turn an
 * input re-read from before that point into the state it left behind (the job knows, from
 * what the sink wrote, which of them were late or already written).
 */
export interface Restore<I, E> {
  readonly positions: (partitions: ReadonlyArray<PartitionRef>) => Effect.Effect<ReadonlyArray<CommittedPosition>, E>
  /** one result per input, in order: its restore form, or undefined when it left nothing in state */
  readonly recall: (inputs: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<I | undefined>, E>
}

/** What the sink writes in one transaction. */
export interface SinkBatch<O> {
  readonly outputs: ReadonlyArray<O>
  readonly rejected: ReadonlyArray<Rejected>
  /** every partition touched since the last batch, with its next offset */
  readonly positions: ReadonlyArray<Position>
  readonly watermark: number
}

export interface Sink<O, E> {
  readonly write: (batch: SinkBatch<O>) => Effect.Effect<void, E>
}

export interface RunnerOptions {
  /** W */
  readonly outOfOrdernessMs: number
  /** I */
  readonly idleTimeoutMs: number
  readonly keyGroups: number
  /** hand outputs to the sink once this many are buffered */
  readonly flushRows: number
  /** ... or once this much processing time has passed */
  readonly flushIntervalMs: number
  /** how often idleness and flushes are checked without input */
  readonly tickMs: number
  /** batches waiting for the sink before reading pauses */
  readonly sinkQueueCapacity: number
  /** unbounded sources: above this many buffered records, stop waiting for empty partitions */
  readonly alignmentBufferLimit: number
}

export const defaultRunnerOptions: RunnerOptions = {
  outOfOrdernessMs: 15_000,
  idleTimeoutMs: 30_000,
  keyGroups: 1,
  flushRows: 5_000,
  flushIntervalMs: 250,
  tickMs: 1_000,
  sinkQueueCapacity: 2,
  alignmentBufferLimit: 200_000
}

/** A message on its way through the aligner: decoded, or rejected with a reason. */
interface Item<I> {
  readonly envelope: Envelope
  readonly decoded: Decoded<I> | undefined
  readonly error: string | undefined
}

interface Lane {
  readonly ref: PartitionRef
  readonly index: number
  readonly watermark: PartitionState
  nextOffset: number
  dirty: boolean
  /** offsets below this were processed before a restart: re-read only to rebuild state */
  committedNext: number
  /** checkpoints of (first offset, max event time) per block of offsets, oldest first */
  readonly blocks: Array<{ readonly first: number; maxTs: number; count: number }>
  /** taken from this process by a rebalance */
  revoked: boolean
  /** has delivered any message */
  delivered: boolean
}

/** Offsets per restart-offset checkpoint: the granularity of re-reading after a restart. */
const BLOCK = 256

/**
 * Runs `job` until a bounded source ends (then the watermark goes to +∞ and everything is
 * written) or, for an unbounded source, until interrupted; in both cases what was processed
 * is written and committed before the effect completes.
 */
export const run = <S, I, O, ESource, ESink>(options: {
  readonly source: Source<ESource>
  readonly job: Job<S, I, O>
  readonly sink: Sink<O, ESink>
  readonly options?: Partial<RunnerOptions>
  readonly stats?: RunnerStats
  /** resume from committed positions (unbounded sources); a bounded replay always starts fresh */
  readonly restore?: Restore<I, ESink>
}): Effect.Effect<RunnerStats, ESource | ESink, Scope.Scope> =>
  Effect.gen(function*() {
    const opts: RunnerOptions = { ...defaultRunnerOptions, ...options.options }
    const { source, job, sink } = options
    const stats = options.stats ?? new RunnerStats()
    const tracker = new WatermarkTracker({ outOfOrdernessMs: opts.outOfOrdernessMs, idleTimeoutMs: opts.idleTimeoutMs })
    const aligner = new InputAligner<Item<I>>((item) => item.decoded?.ts)
    const actors = yield* makeActors(job.operator, opts.keyGroups)
    stats.attach({ tracker, actors })

    const lanes = new Map<string, Lane>()
    const laneByIndex: Array<Lane> = []
    const laneFor = (ref: PartitionRef, now: number): Lane => {
      const id = partitionId(ref)
      let lane = lanes.get(id)
      if (lane === undefined) {
        const index = aligner.addPartition()
        lane = { ref, index, watermark: tracker.register(id, now), nextOffset: 0, dirty: false, committedNext: 0, blocks: [], revoked: false, delivered: false }
        lanes.set(id, lane)
        laneByIndex[index] = lane
        stats.partition(id, ref)
      }
      return lane
    }

    // ---- sink fiber: one transaction per batch, in order, then the source's commit. The sink
    // retries what can be retried; if it still fails, the job fails with its error (never
    // waits forever on a queue nobody drains).
    const sinkQueue = yield* Queue.bounded<SinkBatch<O>, Cause.Done>(opts.sinkQueueCapacity)
    const sinkFailed = yield* Deferred.make<never, ESink>()
    const sinkFiber = yield* Effect.forkScoped(
      Stream.fromQueue(sinkQueue).pipe(
        Stream.runForEach((batch) =>
          Effect.gen(function*() {
            const started = yield* Clock.currentTimeMillis
            yield* sink.write(batch)
            const finished = yield* Clock.currentTimeMillis
            stats.recordSinkWrite(batch.outputs.length + batch.rejected.length, finished - started, finished)
            if (source._tag === "Unbounded") yield* source.commit(batch.positions)
          })),
        Effect.onError((cause) => Deferred.failCause(sinkFailed, cause))
      )
    )
    /** Hands a batch to the sink fiber, waiting while it is busy; fails if the sink has failed. */
    const offer = (batch: SinkBatch<O>) =>
      Effect.raceFirst(Queue.offer(sinkQueue, batch).pipe(Effect.asVoid), Deferred.await(sinkFailed)).pipe(Effect.interruptible)

    // ---- output buffer
    let outputs: Array<O> = []
    let rejected: Array<Rejected> = []
    let lastFlush = yield* Clock.currentTimeMillis
    let actorsWatermark = -Infinity

    /** The oldest offset of `lane` whose event may still be in state at the current watermark. */
    const restartOffset = (lane: Lane): number => {
      const cutoff = tracker.value - job.retainMs - 1
      const blocks = lane.blocks
      while (blocks.length > 1 && blocks[0]!.maxTs < cutoff) blocks.shift()
      if (blocks.length === 1 && blocks[0]!.maxTs < cutoff) return lane.nextOffset
      return blocks.length === 0 ? lane.nextOffset : Math.min(blocks[0]!.first, lane.nextOffset)
    }

    const flush = (now: number) =>
      Effect.suspend(() => {
        lastFlush = now
        const positions: Array<Position> = []
        for (const lane of lanes.values()) {
          if (!lane.dirty) continue
          lane.dirty = false
          positions.push({
            topic: lane.ref.topic,
            partition: lane.ref.partition,
            nextOffset: lane.nextOffset,
            restartOffset: restartOffset(lane),
            maxEventTime: lane.watermark.maxEventTime
          })
        }
        if (outputs.length === 0 && rejected.length === 0 && positions.length === 0) return Effect.void
        const batch: SinkBatch<O> = { outputs, rejected, positions, watermark: tracker.value }
        // the buffers are let go only once the sink has the batch: a stop while waiting keeps them
        return Effect.map(offer(batch), () => {
          if (outputs === batch.outputs) outputs = []
          if (rejected === batch.rejected) rejected = []
        }).pipe(Effect.onInterrupt(() => Effect.sync(() => { for (const p of positions) { const lane = lanes.get(partitionId(p)); if (lane !== undefined) lane.dirty = true } })))
      })

    const maybeFlush = (now: number) =>
      outputs.length + rejected.length >= opts.flushRows || now - lastFlush >= opts.flushIntervalMs ? flush(now) : Effect.void

    // ---- the hot path: release aligned items, judge them against the watermark, process
    let inputs: Array<KeyedInput<I>> = []
    /** re-read after a restart, to rebuild state */
    let replayed: Array<KeyedInput<I>> = []
    let now = 0
    const onRelease = (index: number, item: Item<I>): void => {
      const lane = laneByIndex[index]!
      const decoded = item.decoded
      const offset = item.envelope.offset
      const isReplay = offset < lane.committedNext
      if (decoded === undefined) {
        if (!isReplay) rejected.push({ envelope: item.envelope, error: item.error! })
      } else {
        if (isReplay) replayed.push({ key: decoded.key, input: decoded.input, watermark: tracker.value })
        // judged against the watermark before this event moves it (its own time never makes it late)
        else inputs.push({ key: decoded.key, input: decoded.input, watermark: tracker.value, message: item.envelope })
        const p = lane.watermark
        if (decoded.ts > p.maxEventTime) {
          tracker.observe(p, decoded.ts)
          tracker.current(now)
        }
        const blocks = lane.blocks
        const last = blocks[blocks.length - 1]
        if (last === undefined || last.count >= BLOCK) blocks.push({ first: offset, maxTs: decoded.ts, count: 1 })
        else {
          last.count++
          if (decoded.ts > last.maxTs) last.maxTs = decoded.ts
        }
      }
      if (offset + 1 > lane.nextOffset) lane.nextOffset = offset + 1
      if (!isReplay) lane.dirty = true
    }
    const onEnd = (index: number): void => {
      tracker.end(laneByIndex[index]!.watermark)
    }
    /**
     * Which empty partitions hold back the others. Files: every one not ended. Kafka: one that
     * is not idle and either has a backlog (there is more to read that would come first) or has
     * never delivered (a topic produced a moment after another); a caught-up partition is not
     * waited for, so a quiet one does not delay the rest. Never once so much is buffered that
     * waiting would grow memory without bound.
     */
    const mustWait = source._tag === "Bounded"
      ? () => true
      : (index: number) => {
        const lane = laneByIndex[index]!
        return !lane.revoked && aligner.size < opts.alignmentBufferLimit &&
          (lane.watermark.backlog || !lane.delivered) && !tracker.isIdle(lane.watermark, now)
      }

    const process = Effect.gen(function*() {
      now = yield* Clock.currentTimeMillis
      aligner.drain(onRelease, onEnd, mustWait)
      if (replayed.length > 0 && options.restore !== undefined) {
        const batch = replayed
        replayed = []
        const recalled = yield* options.restore.recall(batch.map((r) => r.input))
        // restored inputs are judged against the restored watermark, not re-judged as late
        const wm0 = tracker.value
        const restoredInputs: Array<KeyedInput<I>> = []
        recalled.forEach((input, i) => { if (input !== undefined) restoredInputs.push({ key: batch[i]!.key, input, watermark: wm0 }) })
        const out = yield* actors.process(restoredInputs, actorsWatermark)
        for (let i = 0; i < out.length; i++) outputs.push(out[i]!)
      }
      const wm = tracker.current(now)
      if (inputs.length > 0 || wm > actorsWatermark) {
        const batch = inputs
        inputs = []
        actorsWatermark = wm
        const out = yield* actors.process(batch, wm)
        for (let i = 0; i < out.length; i++) outputs.push(out[i]!)
      }
      stats.recordWatermark(wm)
      yield* maybeFlush(now)
    })

    const decodeAll = (records: ReadonlyArray<Envelope>): Array<Item<I>> => {
      const items: Array<Item<I>> = new Array(records.length)
      for (let i = 0; i < records.length; i++) {
        const envelope = records[i]!
        const decoded = job.decode(envelope)
        items[i] = typeof decoded === "string"
          ? { envelope, decoded: undefined, error: decoded }
          : { envelope, decoded, error: undefined }
      }
      return items
    }

    const accept = (event: SourceEvent, at: number): void => {
      switch (event._tag) {
        case "Records": {
          const lane = laneFor(event, at)
          // only events count as activity, when they arrive: a partition delivering nothing but
          // undecodable messages goes idle like a quiet one and never holds the watermark
          tracker.setBacklog(lane.watermark, event.backlog)
          stats.recordRead(lane.ref, event, at)
          if (event.records.length > 0) lane.delivered = true
          const items = decodeAll(event.records)
          if (items.some((item) => item.decoded !== undefined)) tracker.touch(lane.watermark, at)
          aligner.push(lane.index, items)
          break
        }
        case "End":
          aligner.end(laneFor(event, at).index)
          break
        case "Assigned":
          for (const ref of event.partitions) laneFor(ref, at)
          break
        case "Revoked":
          // state of revoked users stays until its timers clean it; positions stop moving;
          // a later assignment of the same partition starts a fresh lane from the stored position
          for (const ref of event.partitions) {
            const id = partitionId(ref)
            const lane = lanes.get(id)
            if (lane === undefined) continue
            lane.revoked = true
            aligner.end(lane.index)
            lanes.delete(id)
            tracker.unregister(id)
          }
          break
      }
    }

    /** Picks up newly assigned partitions where their committed output ends. */
    const resume = (refs: ReadonlyArray<PartitionRef>, at: number, restore: Restore<I, ESink>) =>
      Effect.gen(function*() {
        const fresh = refs.filter((ref) => !lanes.has(partitionId(ref)))
        if (fresh.length === 0) return
        const committed = yield* restore.positions(fresh)
        for (const position of committed) {
          const lane = laneFor(position, at)
          lane.committedNext = position.nextOffset
          lane.nextOffset = Math.max(lane.nextOffset, position.nextOffset)
          // only the watermark itself is restored: each partition's maximum is rebuilt by
          // re-reading, so the watermark cannot run ahead of events still being re-read
          tracker.restore(position.watermark, -Infinity)
        }
        stats.recordWatermark(tracker.value)
      })

    const finish = Effect.gen(function*() {
      yield* process
      yield* flush(yield* Clock.currentTimeMillis)
      yield* Queue.end(sinkQueue)
      yield* Effect.raceFirst(Fiber.join(sinkFiber), Deferred.await(sinkFailed))
    })

    if (source._tag === "Bounded") {
      source.partitions.forEach((ref) => laneFor(ref, 0)) // lane index = the source's partition index
      for (let starving = aligner.starving(); starving.length > 0; starving = aligner.starving()) {
        const pulled = yield* Effect.forEach(starving, source.pull, { concurrency: "unbounded" })
        const at = yield* Clock.currentTimeMillis
        for (const event of pulled) accept(event, at)
        yield* process
      }
      // End of input is end of time: every partition ended, the watermark is +∞.
      yield* finish
      return stats
    }

    // Unbounded: until the stream ends or the fiber is interrupted; either way, what was
    // processed is written and its positions committed. A step is never cut in half.
    const ticks = Stream.fromSchedule(Schedule.spaced(Duration.millis(opts.tickMs))).pipe(Stream.map(() => undefined))
    const events: Stream.Stream<SourceEvent | undefined, ESource> = Stream.merge(source.events, ticks, { haltStrategy: "left" })
    const loop = events.pipe(Stream.runForEach((event) =>
      Effect.uninterruptible(Effect.gen(function*() {
        if (event !== undefined) {
          const at = yield* Clock.currentTimeMillis
          if (event._tag === "Assigned" && options.restore !== undefined) yield* resume(event.partitions, at, options.restore)
          accept(event, at)
        }
        yield* process
      }))))
    yield* Effect.onInterrupt(loop, () => finish.pipe(Effect.ignore))
    yield* finish
    return stats
  })
