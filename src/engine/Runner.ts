/**
 * The engine's driver: the thin Effect layer around the pure task step (`Task.ts`).
 *
 *   source ─► task n (partition n of every topic) ─► decode ─► align ─► watermark ─► jobs ─► sinks
 *
 * It owns the tasks of the partitions this process is assigned (created, claimed and restored
 * on `Assigned`, dropped with everything they buffered on `Revoked`), feeds each batch of
 * records to its task, steps the tasks, and hands each job's outputs with the positions they
 * cover to that job's sink fiber through a bounded queue: a slow sink slows reading, it never
 * grows a buffer. A sink writes nothing of a task that is gone, and a task that a sink finds
 * fenced (another member claimed it since) is dropped.
 *
 * Work moves in batches with plain loops: no Effect, fiber hop or promise per event.
 * Processing time is read only from `Clock`, so `TestClock` drives idleness and flushes.
 */
import { Cause, Clock, Deferred, Duration, Effect, Fiber, Queue, Schedule, Stream } from "effect"
import type { Scope } from "effect"
import { EngineStats } from "./EngineStats.ts"
import type { Envelope, PartitionRef, Source, SourceEvent } from "./Source.ts"
import { originOf as sourceOriginOf, partitionId } from "./Source.ts"
import { Task, type TaskOptions, type TaskOutput } from "./Task.ts"
import type { Decoded, SinkBatch, TaskClaim, Topology } from "./Topology.ts"

export interface RunnerOptions {
  /** W */
  readonly outOfOrdernessMs: number
  /** I */
  readonly idleTimeoutMs: number
  /** hand outputs to the sinks once this many are buffered */
  readonly flushRows: number
  /** ... or once this much processing time has passed */
  readonly flushIntervalMs: number
  /** how often idleness and flushes are checked without input */
  readonly tickMs: number
  /** batches waiting for a sink before reading pauses */
  readonly sinkQueueCapacity: number
  /** unbounded sources: above this many buffered records in a task, stop waiting for its empty partitions */
  readonly alignmentBufferLimit: number
  /** events more than this ahead of the processing clock are refused */
  readonly maxFutureMs: number
  /** on a stop, how long to try writing what is in flight before giving up (it is re-read at the next start) */
  readonly shutdownGraceMs: number
}

export const defaultRunnerOptions: RunnerOptions = {
  outOfOrdernessMs: 15_000,
  idleTimeoutMs: 30_000,
  flushRows: 5_000,
  flushIntervalMs: 250,
  tickMs: 1_000,
  sinkQueueCapacity: 2,
  alignmentBufferLimit: 200_000,
  maxFutureMs: 86_400_000,
  shutdownGraceMs: 5_000
}

/** One task's share of a job's batch. */
interface Part<Ev> {
  readonly task: Task<Ev>
  readonly output: TaskOutput<unknown>
}

const isEmptyOutput = (o: TaskOutput<unknown>) => o.outputs.length === 0 && o.rejected.length === 0 && o.positions.length === 0

/**
 * Runs `topology` until a bounded source ends (then the watermark goes to +∞ and everything
 * is written) or, for an unbounded source, until interrupted; in both cases what was
 * processed is written and committed before the effect completes (on interruption, for at
 * most `shutdownGraceMs`).
 */
export const run = <Ev, ESource, ESink>(args: {
  readonly source: Source<ESource>
  readonly topology: Topology<Ev, ESink>
  readonly options?: Partial<RunnerOptions>
  readonly stats?: EngineStats
}): Effect.Effect<EngineStats, ESource | ESink, Scope.Scope> =>
  Effect.gen(function*() {
    const opts: RunnerOptions = { ...defaultRunnerOptions, ...args.options }
    const { source, topology } = args
    const jobs = topology.jobs
    const stats = args.stats ?? new EngineStats()
    const bounded = source._tag === "Bounded"
    const taskOptions: TaskOptions = {
      outOfOrdernessMs: opts.outOfOrdernessMs,
      idleTimeoutMs: opts.idleTimeoutMs,
      bounded,
      alignmentBufferLimit: opts.alignmentBufferLimit,
      reportsCaughtUp: source._tag === "Unbounded" && source.reportsCaughtUp === true
    }
    const tasks = new Map<number, Task<Ev>>()
    /** tasks a sink found claimed by another member: dropped at the next step */
    const fenced = new Set<number>()
    stats.attach(() => tasks.values(), jobs.map((j) => j.name))

    const originOf = sourceOriginOf(source)

    const dropTask = (id: number, why: string) =>
      Effect.suspend(() => {
        const task = tasks.get(id)
        if (task === undefined) return Effect.void
        tasks.delete(id)
        task.dispose()
        for (const lane of task.partitions) stats.dropPartition(lane.ref)
        return Effect.logInfo(`task ${id}: dropped (${why}); its buffered work is discarded`)
      })

    // ---- sinks: one fiber per job, one transaction per batch, in order. A part of a task that
    // is gone (revoked, fenced) is not written. A sink that fails for good fails the job.
    const sinkFailed = yield* Deferred.make<never, ESink>()
    const queues = yield* Effect.forEach(jobs, () => Queue.bounded<ReadonlyArray<Part<Ev>>, Cause.Done>(opts.sinkQueueCapacity))
    const write = (j: number, parts: ReadonlyArray<Part<Ev>>): Effect.Effect<void, ESink> =>
      Effect.gen(function*() {
        const live = parts.filter((p) => tasks.get(p.task.id) === p.task && !fenced.has(p.task.id))
        if (live.length === 0) return
        const result = yield* writeLive(j, live)
        if (result.fenced.length === 0) return
        // a fenced batch wrote nothing: the other tasks' parts are written again without it
        for (const t of result.fenced) fenced.add(t)
        yield* write(j, live)
      })
    const writeLive = (j: number, live: ReadonlyArray<Part<Ev>>) =>
      Effect.gen(function*() {
        const claims: Array<TaskClaim> = []
        const batch = {
          job: jobs[j]!.name,
          outputs: [] as Array<unknown>,
          rejected: [] as Array<SinkBatch<unknown>["rejected"][number]>,
          positions: [] as Array<SinkBatch<unknown>["positions"][number]>,
          claims
        }
        for (const p of live) {
          claims.push(p.task.claim)
          for (const o of p.output.outputs) batch.outputs.push(o)
          for (const r of p.output.rejected) batch.rejected.push(r)
          for (const pos of p.output.positions) batch.positions.push(pos)
        }
        const result = yield* jobs[j]!.sink.write(batch)
        if (result.fenced.length === 0 && j === 0 && source._tag === "Unbounded") yield* source.commit(batch.positions)
        return result
      })
    const sinkFibers = yield* Effect.forEach(queues, (queue, j) =>
      Effect.forkScoped(Stream.fromQueue(queue).pipe(
        Stream.runForEach((parts) => write(j, parts)),
        Effect.onError((cause) => Deferred.failCause(sinkFailed, cause))
      )))
    /**
     * The time since `from` was spent not reading: waiting for room in a sink's queue (a sink
     * away: back-pressure) or restoring new tasks. It does not count towards any partition's
     * idleness, or a sink away for longer than I would make every partition look idle when it
     * comes back: the watermark would jump to the largest event time seen, and what was
     * waiting to be read would be late.
     */
    const notReadSince = (from: number) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        if (now > from) for (const task of tasks.values()) task.notReadFor(now - from)
      })

    /** Hands a batch to a sink fiber, waiting while it is busy; fails if a sink has failed. */
    const offer = (j: number, parts: ReadonlyArray<Part<Ev>>) =>
      Effect.gen(function*() {
        const from = yield* Clock.currentTimeMillis
        yield* Effect.raceFirst(Queue.offer(queues[j]!, parts).pipe(Effect.asVoid), Deferred.await(sinkFailed)).pipe(Effect.interruptible)
        yield* notReadSince(from)
      })

    // ---- flushes
    let lastFlush = yield* Clock.currentTimeMillis
    const flush = (now: number, final = false) =>
      Effect.suspend(() => {
        lastFlush = now
        const perJob: Array<Array<Part<Ev>>> = jobs.map(() => [])
        for (const task of tasks.values()) {
          task.flush(now, final).forEach((output, j) => { if (!isEmptyOutput(output)) perJob[j]!.push({ task, output }) })
        }
        let offered = 0
        // what a sink does not have yet goes back to its task: a stop while waiting loses nothing
        return Effect.gen(function*() {
          for (; offered < jobs.length; offered++) if (perJob[offered]!.length > 0) yield* offer(offered, perJob[offered]!)
        }).pipe(Effect.onInterrupt(() => Effect.sync(() => {
          for (let j = offered; j < jobs.length; j++) for (const p of perJob[j]!) p.task.putBack(j, p.output)
        })))
      })
    const pending = (): number => {
      let n = 0
      for (const t of tasks.values()) n += t.pending
      return n
    }
    const maybeFlush = (now: number) =>
      pending() >= opts.flushRows || now - lastFlush >= opts.flushIntervalMs ? flush(now) : Effect.void

    // ---- the step
    const process = Effect.gen(function*() {
      for (const id of fenced) yield* dropTask(id, "another member claimed it: fenced")
      fenced.clear()
      const now = yield* Clock.currentTimeMillis
      for (const task of tasks.values()) {
        task.release(now)
        for (let j = 0; j < jobs.length; j++) {
          const recall = jobs[j]!.recall?.recall
          if (recall === undefined) continue
          const replayed = task.takeReplayed(j)
          if (replayed.length === 0) continue
          const recalled = yield* recall(replayed.map((r) => r.input))
          task.applyRecalled(j, replayed, recalled)
        }
        task.advance(now)
      }
      yield* maybeFlush(now)
    })

    /** Creates (claiming them) and restores the tasks of newly assigned partitions. */
    const assign = (refs: ReadonlyArray<PartitionRef>, at: number) =>
      Effect.gen(function*() {
        const fresh = [...new Set(refs.map((r) => r.partition))].filter((n) => !tasks.has(n)).sort((a, b) => a - b)
        const claims = fresh.length === 0 ? [] : yield* topology.ownership.claim(fresh)
        const created: Array<Task<Ev>> = []
        for (const claim of claims) {
          const task = new Task<Ev>(claim.task, claim, jobs, taskOptions)
          tasks.set(claim.task, task)
          created.push(task)
        }
        for (const ref of refs) {
          tasks.get(ref.partition)?.addLane(ref, originOf(ref), at)
          stats.partition(ref)
        }
        if (bounded || created.length === 0) return
        const createdRefs = refs.filter((r) => created.some((t) => t.id === r.partition))
        for (let j = 0; j < jobs.length; j++) {
          const recall = jobs[j]!.recall
          if (recall === undefined) continue
          for (const position of yield* recall.positions(createdRefs)) tasks.get(position.partition)?.restore(j, position)
        }
      })

    const decoder = (at: number) => {
      const latest = at + opts.maxFutureMs
      return (envelope: Envelope): Decoded<Ev> | string => topology.decode(envelope, latest)
    }

    const accept = (event: SourceEvent, at: number) =>
      Effect.gen(function*() {
        switch (event._tag) {
          case "Records": {
            stats.recordRead(event, at)
            const task = tasks.get(event.partition)
            if (task === undefined) return // not ours (any more)
            if (task.lane(event) === undefined) {
              task.addLane(event, originOf(event), at)
              stats.partition(event)
            }
            task.accept(event, at, decoder(at))
            return
          }
          case "End":
            tasks.get(event.partition)?.end(event)
            return
          case "Assigned":
            yield* assign(event.partitions, at)
            return yield* notReadSince(at)
          case "Revoked":
            for (const n of new Set(event.partitions.map((r) => r.partition))) yield* dropTask(n, "revoked")
            return
        }
      })

    const finish = Effect.gen(function*() {
      yield* process
      yield* flush(yield* Clock.currentTimeMillis, true)
      for (const q of queues) yield* Queue.end(q)
      yield* Effect.raceFirst(Effect.forEach(sinkFibers, Fiber.join, { discard: true }), Deferred.await(sinkFailed))
      for (const job of jobs) if (job.sink.close !== undefined) yield* job.sink.close
    })

    if (source._tag === "Bounded") {
      yield* assign(source.partitions, 0)
      const indexOf = new Map(source.partitions.map((ref, i) => [partitionId(ref), i]))
      for (;;) {
        const starving: Array<number> = []
        for (const task of tasks.values()) for (const lane of task.starving()) starving.push(indexOf.get(lane.id)!)
        if (starving.length === 0) break
        const pulled = yield* Effect.forEach(starving, source.pull, { concurrency: "unbounded" })
        const at = yield* Clock.currentTimeMillis
        for (const event of pulled) yield* accept(event, at)
        yield* process
      }
      // End of input is end of time: every partition ended, the watermark is +∞.
      yield* finish
      return stats
    }

    // Unbounded: until the stream ends or the fiber is interrupted; either way, what was
    // processed is written and its positions committed. A step is never cut in half. A stop
    // gives the sinks `shutdownGraceMs` (PostgreSQL may be away): what is not committed by
    // then is read again at the next start.
    const ticks = Stream.fromSchedule(Schedule.spaced(Duration.millis(opts.tickMs))).pipe(Stream.map(() => undefined))
    const events: Stream.Stream<SourceEvent | undefined, ESource> = Stream.merge(source.events, ticks, { haltStrategy: "left" })
    const loop = events.pipe(Stream.runForEach((event) =>
      Effect.uninterruptible(Effect.gen(function*() {
        if (event !== undefined) yield* accept(event, yield* Clock.currentTimeMillis)
        yield* process
      }))))
    const stopping = finish.pipe(
      Effect.timeoutOrElse({
        duration: Duration.millis(opts.shutdownGraceMs),
        orElse: () => Effect.logWarning(`stop: what is in flight was not written within ${opts.shutdownGraceMs} ms; it is read again at the next start`)
      }),
      Effect.catchCause((cause) => Effect.logWarning("stop: writing what is in flight failed; it is read again at the next start", cause))
    )
    // a sink that fails for good fails the job at once, even when no later flush finds its queue full
    yield* Effect.onInterrupt(Effect.raceFirst(loop, Deferred.await(sinkFailed)), () => stopping)
    yield* finish
    return stats
  })
