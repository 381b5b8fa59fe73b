/**
 * Kafka behind the Source port: a kafkajs consumer group over co-partitioned topics.
 *
 * - **Exactly-once positions.** The source of truth for where to read is PostgreSQL, not
 *   the group's committed offsets: when partitions are assigned they are paused at once (in
 *   kafkajs's synchronous GROUP_JOIN event, before any fetch), their start offsets are
 *   asked from `startOffsets` (the positions committed with the rows), then the source
 *   emits `Assigned`, an empty `Records` per new partition (its backlog from the end
 *   offset), seeks each partition to its start and resumes it. A partition that stays
 *   assigned across a rebalance is sought to the next offset this source handed on, so it
 *   neither skips nor repeats. Offsets are committed to Kafka too (`commit`), only so lag
 *   tools work.
 * - **Backpressure.** `eachBatch` hands each batch to a bounded queue (`queueCapacity`
 *   batches) and waits there; kafkajs fetches the next batch only once every batch of the
 *   previous fetch is handed on, so memory does not grow with the backlog. While it waits
 *   it heartbeats; if the group starts a rebalance meanwhile, the batch is withdrawn (not
 *   handed on, not resolved) and kafkajs rejoins.
 * - **Idleness.** kafkajs calls `eachBatch` only with messages, so every `idlePollMs` the
 *   partitions that delivered nothing meanwhile get an empty `Records` with their current
 *   high watermark and backlog (end offset > next offset): the engine can then tell a
 *   caught-up partition (idle once so reported at least its timeout after its last
 *   delivery: `reportsCaughtUp`) from one that is behind, or from one it cannot read (a
 *   broker that does not answer sends no report, so no partition goes idle meanwhile).
 *
 * - **The broker away.** A probe asks the broker for its metadata every `probeMs`; while it
 *   fails, `health()` says since when and why (for `/readyz`). kafkajs retries requests with
 *   capped backoff and restarts its consumer after a retriable crash; a crash it does not
 *   restart (its retries exhausted on a connection error, no coordinator) is restarted here,
 *   with backoff capped at 30 s, so an outage never leaves the consumer dead. When the
 *   consumer rejoins, every partition it keeps is sought to the next offset handed on, a new
 *   one starts from its stored position: nothing is skipped or read twice. After `giveUpMs`
 *   of an unreachable broker the stream fails with SourceError "BrokerUnavailable".
 *
 * kafkajs types do not leave this file and KafkaClient.ts.
 */
import { Cause, Clock, Effect, Exit, Fiber, Queue, Schedule, Stream } from "effect"
import type { Context, Scope } from "effect"
import kafkajs from "kafkajs"
import type { Admin, Consumer, EachBatchPayload, PartitionAssigner } from "kafkajs"
import type { Envelope, PartitionRef, Position, Records, SourceEvent, UnboundedSource } from "../engine/Source.ts"
import { partitionId } from "../engine/Source.ts"
import {
  attempt, ensureTopics, makeAdmin, makeClient, makeProbe, type PartitionEnds, partitionEnds, rootMessage, toSourceError
} from "./KafkaClient.ts"
import { SourceError } from "./SourceError.ts"

const { AssignerProtocol } = kafkajs

/** Where a partition starts: the next offset to read. */
export interface StartOffset {
  readonly topic: string
  readonly partition: number
  readonly offset: number
}

export interface KafkaSourceOptions<E> {
  readonly brokers: ReadonlyArray<string>
  readonly groupId: string
  /** co-partitioned input topics (same partition count, keyed alike) */
  readonly topics: ReadonlyArray<string>
  /** partitions of a topic created because it is missing */
  readonly partitions: number
  /**
   * Stored positions of newly assigned partitions; a partition left out starts at the
   * earliest offset still in the log.
   */
  readonly startOffsets: (partitions: ReadonlyArray<PartitionRef>) => Effect.Effect<ReadonlyArray<StartOffset>, E>
  /** batches waiting for the engine before `eachBatch` blocks (default 4) */
  readonly queueCapacity?: number
  /** how often quiet partitions report their end offset (default 1000 ms) */
  readonly idlePollMs?: number
  /** how often handed-on positions are committed to Kafka (default 1000 ms) */
  readonly commitIntervalMs?: number
  /**
   * how long the group waits for a member that stopped heartbeating (default 10 s): after a
   * kill -9, a restarted engine gets its partitions back only once the old session expired
   */
  readonly sessionTimeoutMs?: number
  readonly heartbeatIntervalMs?: number
  /** longest a fetch waits for data, and how long kafkajs sleeps while every partition is paused (default 25 ms) */
  readonly maxWaitMs?: number
  /** the most one fetch returns of a partition, i.e. the largest batch (default 1 MiB; a fetch returns at most twice this) */
  readonly maxBytesPerPartition?: number
  readonly clientId?: string
  /** how often the broker is probed for `health()` (default 1000 ms) */
  readonly probeMs?: number
  /** fail the stream once the broker has been unreachable this long; 0 or absent: never */
  readonly giveUpMs?: number
}

/** Whether the source is connected, and why not (one line, for `/readyz`). */
export interface SourceHealth {
  readonly ok: boolean
  readonly detail?: string
}

export interface KafkaSource<E> extends UnboundedSource<SourceError | E> {
  /** the next offset handed to the stream, per `topic/partition` of the current assignment */
  readonly handedOn: () => ReadonlyMap<string, number>
  /** how many times this consumer joined its group */
  readonly joins: () => number
  /** not ok while the broker is unreachable or the consumer is out of its group after a crash */
  readonly health: () => SourceHealth
}

/** The source's name in `shop.source_positions`. */
export const sourceName = (groupId: string): string => `kafka:${groupId}`

/** A member of the group as the assigner sees it: the partition numbers (tasks) it holds now. */
export interface GroupMember {
  readonly id: string
  readonly owned: ReadonlyArray<number>
}

/**
 * Partition n of every topic to the same member (the co-partitioning the join needs;
 * kafkajs's round-robin assigner deals topic-partitions as one list, which splits partition
 * n of two topics between members as soon as the partition count is not a multiple of the
 * group size), balanced (each member ⌊n/m⌋ or ⌈n/m⌉ partition numbers) and **sticky**: a
 * member keeps the numbers it holds, up to its share, so a member joining or leaving moves
 * only what balance needs, and every move re-reads up to A + W of input. The larger shares go
 * to the members that hold more now (ties by id); the numbers left are dealt round-robin over
 * the members below their share, in id order (with no history: plain round-robin). A number
 * two members claim (a stale member) goes to the first by id.
 */
export const assignCoPartitioned = (
  members: ReadonlyArray<string | GroupMember>,
  topics: ReadonlyArray<{ readonly topic: string; readonly partitions: ReadonlyArray<number> }>
): Map<string, Record<string, Array<number>>> => {
  const sorted = members.map((m): GroupMember => typeof m === "string" ? { id: m, owned: [] } : m).sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  const out = new Map<string, Record<string, Array<number>>>(sorted.map((m) => [m.id, {}]))
  if (sorted.length === 0) return out
  const numbers = [...new Set(topics.flatMap((t) => t.partitions))].sort((a, b) => a - b)
  const exists = new Set(numbers)
  const base = Math.floor(numbers.length / sorted.length)
  const extra = numbers.length % sorted.length
  const byHolding = [...sorted].sort((a, b) => b.owned.filter((n) => exists.has(n)).length - a.owned.filter((n) => exists.has(n)).length || (a.id < b.id ? -1 : 1))
  const share = new Map(byHolding.map((m, i) => [m.id, base + (i < extra ? 1 : 0)]))
  const given = new Map<string, Array<number>>(sorted.map((m) => [m.id, []]))
  const taken = new Set<number>()
  for (const m of sorted) {
    const mine = given.get(m.id)!
    for (const n of [...m.owned].sort((a, b) => a - b)) {
      if (mine.length >= share.get(m.id)! || !exists.has(n) || taken.has(n)) continue
      taken.add(n)
      mine.push(n)
    }
  }
  let next = 0
  for (const n of numbers) {
    if (taken.has(n)) continue
    for (let tries = 0; tries < sorted.length; tries++) {
      const m = sorted[next++ % sorted.length]!
      const mine = given.get(m.id)!
      if (mine.length < share.get(m.id)!) {
        mine.push(n)
        break
      }
    }
  }
  for (const m of sorted) {
    const mine = given.get(m.id)!.sort((a, b) => a - b)
    const assignment = out.get(m.id)!
    for (const t of topics) for (const n of mine) if (t.partitions.includes(n)) (assignment[t.topic] ??= []).push(n)
  }
  return out
}

const ownedOf = (metadata: Buffer): ReadonlyArray<number> => {
  try {
    const userData = AssignerProtocol.MemberMetadata.decode(metadata)?.userData
    const parsed: unknown = userData === undefined || userData.length === 0 ? [] : JSON.parse(userData.toString("utf8"))
    return Array.isArray(parsed) ? parsed.filter((n): n is number => Number.isInteger(n)) : []
  } catch {
    return [] // a member of another version: no history
  }
}

/** The assigner: every member tells the group (its metadata's user data) the numbers it holds now. */
const coPartitionedAssigner = (owned: () => ReadonlyArray<number>): PartitionAssigner => ({ cluster }) => ({
  name: "InsightsCoPartitioned",
  version: 0,
  assign: async ({ members, topics }) => {
    const plan = assignCoPartitioned(
      members.map((m) => ({ id: m.memberId, owned: ownedOf(m.memberMetadata) })),
      topics.map((topic) => ({ topic, partitions: cluster.findTopicPartitionMetadata(topic).map((m) => m.partitionId) }))
    )
    return [...plan].map(([memberId, assignment]) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 0, assignment, userData: Buffer.alloc(0) })
    }))
  },
  protocol: ({ topics }) => ({
    name: "InsightsCoPartitioned",
    metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.from(JSON.stringify(owned())) })
  })
})

/** One assigned partition as this source sees it. */
interface Slot {
  readonly ref: PartitionRef
  readonly id: string
  /** `starting`: paused until its start offset is known and sought */
  state: "starting" | "ready"
  /** the next offset to hand on */
  next: number
  /** the partition's end offset, last seen */
  high: number
  /** processing time of the last batch handed on (or of the start) */
  lastBatchAt: number
}

/** A queued event; a batch can be withdrawn until the stream has taken it. */
interface Entry {
  readonly event: SourceEvent
  taken: boolean
  withdrawn: boolean
}

/** One group join: what to tell the engine and which partitions to start. */
interface JoinTask {
  readonly assigned: ReadonlyArray<PartitionRef>
  readonly revoked: ReadonlyArray<PartitionRef>
  readonly added: ReadonlyArray<Slot>
}

const byTopic = (refs: ReadonlyArray<PartitionRef>): Array<{ topic: string; partitions: Array<number> }> => {
  const m = new Map<string, Array<number>>()
  for (const r of refs) {
    let list = m.get(r.topic)
    if (list === undefined) m.set(r.topic, list = [])
    list.push(r.partition)
  }
  return [...m].map(([topic, partitions]) => ({ topic, partitions }))
}

const emptyRecords = (slot: Slot): Records => ({
  _tag: "Records",
  topic: slot.ref.topic,
  partition: slot.ref.partition,
  records: [],
  backlog: slot.next < slot.high,
  highWatermark: slot.high
})

/**
 * Connects, creates missing topics, refuses topics that are not co-partitioned (SourceError
 * "TopicMismatch"), joins the group `groupId` and starts fetching. Everything is released
 * with the scope: the consumer leaves the group, the last positions are committed.
 */
export const make = <E = never>(options: KafkaSourceOptions<E>): Effect.Effect<KafkaSource<E>, SourceError, Scope.Scope> =>
  Effect.gen(function*() {
    const capacity = options.queueCapacity ?? 4
    const idlePollMs = options.idlePollMs ?? 1_000
    const commitIntervalMs = options.commitIntervalMs ?? 1_000
    const topics = [...options.topics]
    const context: Context.Context<never> = yield* Effect.context<never>()
    const nowMs = () => Effect.runSyncWith(context)(Clock.currentTimeMillis)
    const log = Effect.runForkWith(context)

    /** the broker does not answer the probe: since when, and the last error */
    let unreachable: { readonly since: number; error: string } | undefined
    const settings = { brokers: options.brokers, clientId: options.clientId ?? `insights-${options.groupId}` }
    let closing = false
    // while the probe reports the outage, kafkajs's retried connection errors are DEBUG lines;
    // so is the crash of a consumer stopped while it joins (a stop right after a start)
    const kafka = yield* makeClient(settings, () => unreachable !== undefined || closing)
    const admin: Admin = yield* makeAdmin(kafka)
    const partitionCount = yield* ensureTopics(admin, topics, options.partitions)

    const queue = yield* Queue.bounded<Entry, SourceError | E>(capacity)
    const joinTasks = yield* Queue.unbounded<JoinTask>()
    const slots = new Map<string, Slot>()
    const pendingCommits = new Map<string, Position>()
    let joins = 0
    /** the consumer crashed and has not rejoined its group since */
    let crashed: { readonly since: number; error: string } | undefined
    /** consecutive restarts of a consumer kafkajs gave up on, for the backoff */
    let restarts = 0

    const consumer: Consumer = kafka.consumer({
      groupId: options.groupId,
      partitionAssigners: [coPartitionedAssigner(() => [...new Set([...slots.values()].map((slot) => slot.ref.partition))])],
      sessionTimeout: options.sessionTimeoutMs ?? 10_000,
      rebalanceTimeout: 60_000,
      // a member learns of a rebalance at its next heartbeat, and reads what it holds until
      // then: when the second member of a starting group joined, the first read every
      // partition for up to 3 s more (kafkajs's default), and the half that moved was read
      // again (measured, WORKERS=2 draining 1 M events: 162-168 k read twice at 3 s, 31-57 k
      // at 1 s, 13-22 k at 500 ms; the bench's end to end, small runs: 89-97 k events/s at 3 s,
      // 127-130 k at 1 s, 137-147 k at 500 ms)
      heartbeatInterval: options.heartbeatIntervalMs ?? 500,
      // a fetch is answered once it has minBytes, or after maxWaitTimeInMs. Caught up with
      // minBytes 1, each fetch came back at once with a few messages: at 2 500 events/s a
      // member's thread was idle 33–37 % of the time, 15 % of it sending fetches; with 64 KiB,
      // idle 80–86 % (--cpu-prof of the bench's live run, three 10 s windows each). The wait
      // is what an event may spend at the broker when the input is slow, and also how long
      // kafkajs sleeps while every partition is paused, as all are from a join until their
      // stored positions are known (100 → 20 ms took a local start's median from 791 to 752 ms)
      maxWaitTimeInMs: options.maxWaitMs ?? 25,
      minBytes: 65_536,
      // a fetch is decoded whole before its first batch is handed on, so a start's first
      // fetch of a backlog delays its first event: 1 MiB → 5 MiB a fetch was ~100 ms of a local
      // start (median of six, 672 → 757 ms). The consume ceiling (two members draining 1 M
      // events), in four pairs each against 5 MiB (1 MiB a partition): 2 MiB 483–512 k/s
      // against 403–459; 1 MiB (256 KiB a partition) 301–460 k/s against 371–539
      maxBytesPerPartition: options.maxBytesPerPartition ?? 1_048_576,
      maxBytes: 2 * (options.maxBytesPerPartition ?? 1_048_576),
      allowAutoTopicCreation: false,
      // kafkajs restarts a crashed consumer on retriable errors, but not once we are closing
      retry: { initialRetryTime: 300, retries: 8, maxRetryTime: 5_000, restartOnFailure: async () => !closing }
    })

    const fail = (error: SourceError | E) => {
      if (!closing) Queue.failCauseUnsafe(queue, Cause.fail(error))
    }
    const offerEvent = (event: SourceEvent) => Queue.offer(queue, { event, taken: false, withdrawn: false })

    // ---- group join (synchronous, before kafkajs fetches anything of the new assignment)
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      try {
        joins++
        if (crashed !== undefined) log(Effect.logInfo(`Kafka consumer back in group ${options.groupId} after ${Math.round((nowMs() - crashed.since) / 1000)} s`))
        crashed = undefined
        restarts = 0
        const assignment = event.payload.memberAssignment
        const assigned: Array<PartitionRef> = []
        for (const topic of Object.keys(assignment).sort()) {
          for (const partition of [...assignment[topic]!].sort((a, b) => a - b)) assigned.push({ topic, partition })
        }
        const ids = new Set(assigned.map(partitionId))
        const revoked: Array<PartitionRef> = []
        for (const [id, slot] of slots) {
          if (!ids.has(id)) {
            slots.delete(id)
            pendingCommits.delete(id)
            revoked.push(slot.ref)
          }
        }
        const added: Array<Slot> = []
        const paused: Array<PartitionRef> = []
        const now = nowMs()
        for (const ref of assigned) {
          const id = partitionId(ref)
          const slot = slots.get(id)
          if (slot === undefined) {
            const fresh: Slot = { ref, id, state: "starting", next: 0, high: 0, lastBatchAt: now }
            slots.set(id, fresh)
            added.push(fresh)
            paused.push(ref)
          } else if (slot.state === "starting") {
            paused.push(ref) // its start is still being looked up (a kafkajs restart forgets pauses)
          } else {
            // kept across the rebalance: continue exactly after what was handed on, not from
            // the group's committed offset (which lags behind)
            consumer.seek({ topic: ref.topic, partition: ref.partition, offset: String(slot.next) })
          }
        }
        if (paused.length > 0) consumer.pause(byTopic(paused))
        Queue.offerUnsafe(joinTasks, { assigned, revoked, added })
      } catch (error) {
        fail(toSourceError("cannot take the assigned partitions")(error))
      }
    })

    consumer.on(consumer.events.CRASH, (event) => {
      const { error, restart } = event.payload
      if (closing) return
      const message = rootMessage(error)
      if (crashed === undefined) crashed = { since: nowMs(), error: message }
      else crashed.error = message
      if (restart) return log(Effect.logWarning(`Kafka consumer restarting after: ${error.message}`))
      const stopped = toSourceError("the Kafka consumer stopped")(error)
      if (stopped.reason !== "BrokerUnavailable" && unreachable === undefined) return fail(stopped)
      // kafkajs gave up (its retries exhausted while the broker is away) and left the consumer
      // stopped: start it again, with backoff; it rejoins and GROUP_JOIN seeks every partition
      const delay = Math.min(30_000, 1_000 * 2 ** Math.min(restarts++, 5))
      log(Effect.logWarning(`Kafka consumer stopped after: ${error.message}; starting it again in ${delay} ms`))
      log(Effect.sleep(delay).pipe(Effect.andThen(Effect.sync(() => { if (!closing) runConsumer() }))))
    })

    // ---- start newly assigned partitions, one join at a time
    const startPartitions = (task: JoinTask) =>
      Effect.gen(function*() {
        if (task.revoked.length > 0) yield* offerEvent({ _tag: "Revoked", partitions: task.revoked })
        const live = (s: Slot) => slots.get(s.id) === s
        const added = task.added.filter(live)
        if (added.length > 0) {
          // the stored positions and each topic's log ends, asked all at once: this is on the
          // way to a start's first event
          const [stored, endsByTopic] = yield* Effect.all([
            options.startOffsets(added.map((s) => s.ref)),
            Effect.forEach(new Set(added.map((s) => s.ref.topic)), (topic) =>
              // the broker may go away between the join and this: wait for it (the give-up limit applies)
              partitionEnds(admin, topic).pipe(
                Effect.retry({ while: (e) => e.isRetryable && !closing, schedule: Schedule.spaced("1 second") }),
                Effect.map((es) => es.map((e) => [partitionId({ topic, partition: e.partition }), e] as const))
              ), { concurrency: "unbounded" })
          ], { concurrency: "unbounded" })
          const storedById = new Map(stored.map((s) => [partitionId(s), s.offset]))
          const ends = new Map<string, PartitionEnds>(endsByTopic.flat())
          for (const s of added) {
            const end = ends.get(s.id) ?? { partition: s.ref.partition, low: 0, high: 0 }
            const want = storedById.get(s.id)
            let start = want ?? end.low
            if (want !== undefined && (want < end.low || want > end.high)) {
              yield* Effect.logWarning(
                `${s.id}: stored position ${want} is outside the log [${end.low}, ${end.high}] ` +
                  `(${want < end.low ? "deleted by retention" : "topic recreated?"}); reading from ${end.low}`
              )
              start = end.low
            }
            s.next = start
            s.high = end.high
          }
        }
        yield* offerEvent({ _tag: "Assigned", partitions: task.assigned })
        for (const s of added) {
          if (!live(s)) continue
          yield* offerEvent(emptyRecords(s))
          if (!live(s)) continue
          s.state = "ready"
          s.lastBatchAt = yield* Clock.currentTimeMillis
          try {
            consumer.seek({ topic: s.ref.topic, partition: s.ref.partition, offset: String(s.next) })
            consumer.resume(byTopic([s.ref]))
          } catch {
            // the consumer is restarting: its next join seeks every ready partition to `next`
          }
        }
      })

    yield* Stream.fromQueue(joinTasks).pipe(
      Stream.runForEach(startPartitions),
      Effect.catchCause((cause) => Effect.sync(() => { if (!closing) Queue.failCauseUnsafe(queue, cause) })),
      Effect.forkScoped
    )

    // ---- batches: hand on through the bounded queue, heartbeating while the engine is behind
    const deliver = async (entry: Entry, heartbeat: () => Promise<void>): Promise<{ delivered: boolean; error?: unknown }> => {
      const fiber = Effect.runFork(Queue.offer(queue, entry))
      const done = Effect.runPromise(Fiber.await(fiber))
      for (;;) {
        let timer: ReturnType<typeof setTimeout> | undefined
        const exit = await Promise.race([done, new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), 1_000) })])
        clearTimeout(timer)
        if (exit !== undefined) return { delivered: Exit.isSuccess(exit) && exit.value && !entry.withdrawn }
        if (closing) {
          entry.withdrawn = true
          return { delivered: entry.taken }
        }
        try {
          await heartbeat()
        } catch (error) {
          // a rebalance: withdraw the batch unless the engine already took it, then let kafkajs rejoin
          if (entry.taken) return { delivered: true, error }
          entry.withdrawn = true
          return { delivered: false, error }
        }
      }
    }

    const eachBatch = async ({ batch, heartbeat, resolveOffset, isStale }: EachBatchPayload): Promise<void> => {
      const slot = slots.get(`${batch.topic}/${batch.partition}`)
      if (closing || slot === undefined || slot.state !== "ready" || isStale()) return
      const last = Number(batch.lastOffset())
      const high = Number(batch.highWatermark)
      const records: Array<Envelope> = []
      for (const m of batch.messages) {
        const offset = Number(m.offset)
        if (offset < slot.next) continue
        records.push({
          topic: batch.topic,
          partition: batch.partition,
          offset,
          key: m.key == null ? null : m.key.toString("utf8"),
          value: m.value == null ? "" : m.value.toString("utf8"),
          bytes: m.value == null ? undefined : m.value
        })
      }
      let error: unknown = undefined
      if (records.length > 0) {
        const entry: Entry = {
          event: { _tag: "Records", topic: batch.topic, partition: batch.partition, records, backlog: last + 1 < high, highWatermark: high },
          taken: false,
          withdrawn: false
        }
        const outcome = await deliver(entry, heartbeat)
        if (!outcome.delivered) {
          if (outcome.error !== undefined) throw outcome.error
          return
        }
        error = outcome.error
      }
      slot.next = Math.max(slot.next, last + 1)
      slot.high = Math.max(slot.high, high)
      slot.lastBatchAt = nowMs()
      resolveOffset(batch.lastOffset())
      if (error !== undefined) throw error
    }

    // A batch of only transaction markers never reaches eachBatch; kafkajs moves past it.
    consumer.on(consumer.events.END_BATCH_PROCESS, (event) => {
      const { topic, partition, batchSize, firstOffset, lastOffset } = event.payload
      const slot = slots.get(`${topic}/${partition}`)
      if (batchSize === 0 && slot !== undefined && slot.state === "ready" && Number(firstOffset) <= slot.next) {
        slot.next = Math.max(slot.next, Number(lastOffset) + 1)
      }
    })

    // ---- quiet partitions report their end offsets (non-blocking: skipped while the engine is behind)
    const pollQuiet = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const quiet = [...slots.values()].filter((s) => s.state === "ready" && now - s.lastBatchAt >= idlePollMs)
      for (const topic of new Set(quiet.map((s) => s.ref.topic))) {
        const ends = yield* partitionEnds(admin, topic)
        for (const e of ends) {
          const s = slots.get(partitionId({ topic, partition: e.partition }))
          if (s === undefined || s.state !== "ready" || now - s.lastBatchAt < idlePollMs) continue
          s.high = Math.max(s.high, e.high)
          Queue.offerUnsafe(queue, { event: emptyRecords(s), taken: false, withdrawn: false })
        }
      }
    }).pipe(Effect.catch((e) => Effect.logWarning(`cannot read end offsets: ${e.message}`)))
    yield* Effect.forkScoped(Effect.repeat(pollQuiet, Schedule.spaced(idlePollMs)))

    // ---- Kafka's committed offsets follow PostgreSQL's, for lag tools
    const flushCommits = Effect.suspend(() => {
      const offsets = [...pendingCommits.values()].filter((p) => slots.has(partitionId(p)))
      pendingCommits.clear()
      if (offsets.length === 0) return Effect.void
      return attempt("cannot commit offsets to Kafka", () =>
        consumer.commitOffsets(offsets.map((p) => ({ topic: p.topic, partition: p.partition, offset: String(p.nextOffset) })))).pipe(
        Effect.catch((e) => Effect.logDebug(e.message))
      )
    })
    yield* Effect.forkScoped(Effect.repeat(flushCommits, Schedule.spaced(commitIntervalMs)))

    yield* Effect.acquireRelease(
      attempt("cannot start the Kafka consumer", async () => {
        await consumer.connect()
        await consumer.subscribe({ topics, fromBeginning: true })
      }),
      () =>
        Effect.gen(function*() {
          closing = true
          yield* Queue.shutdown(queue) // wakes an eachBatch waiting for room
          yield* flushCommits.pipe(Effect.timeout("3 seconds"), Effect.ignore)
          // leaving the group waits for in-flight requests, a pending JoinGroup included: bounded
          yield* Effect.promise(() => consumer.disconnect().catch(() => undefined)).pipe(Effect.timeout("4 seconds"), Effect.ignore)
        })
    )
    // Joining can wait for a crashed member's session to expire: not part of starting up (the
    // engine reports not ready until `Assigned`). kafkajs reports a failed join as a CRASH.
    const runConsumer = () => {
      consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch })
        .catch((error: unknown) => fail(toSourceError("cannot join the consumer group")(error)))
    }
    runConsumer()

    // ---- the broker's reachability, for health() and the give-up limit
    const probe = yield* makeProbe(settings)
    const giveUpMs = options.giveUpMs ?? 0
    const seconds = (ms: number) => `${Math.round(ms / 1000)} s`
    const checkBroker = Effect.gen(function*() {
      const result = yield* Effect.result(probe)
      const now = yield* Clock.currentTimeMillis
      if (result._tag === "Success") {
        if (unreachable !== undefined) yield* Effect.logInfo(`Kafka broker reachable again after ${seconds(now - unreachable.since)}`)
        unreachable = undefined
        return false
      }
      const error = rootMessage(result.failure.cause ?? result.failure)
      if (unreachable === undefined) {
        unreachable = { since: now, error }
        yield* Effect.logWarning(`Kafka broker unreachable: ${error}; retrying`)
      } else unreachable.error = error
      if (giveUpMs <= 0 || now - unreachable.since < giveUpMs || closing) return false
      fail(new SourceError({
        reason: "BrokerUnavailable",
        message: `Kafka broker unreachable for ${seconds(now - unreachable.since)} (since ${new Date(unreachable.since).toISOString()}, ` +
          `give-up limit ${giveUpMs} ms): ${error}`
      }))
      return true
    })
    yield* Effect.forkScoped(Effect.repeat(checkBroker, { schedule: Schedule.spaced(options.probeMs ?? 1_000), until: (gaveUp) => gaveUp }))
    yield* Effect.logInfo(`reading Kafka topics ${topics.join(", ")} (${partitionCount} partitions each) as group ${options.groupId}`)

    const events: Stream.Stream<SourceEvent, SourceError | E> = Stream.fromQueue(queue).pipe(
      Stream.filter((entry) => {
        if (entry.withdrawn) return false
        entry.taken = true
        return true
      }),
      Stream.map((entry) => entry.event)
    )

    return {
      _tag: "Unbounded",
      name: sourceName(options.groupId),
      // pollQuiet says every idlePollMs, from the broker's end offsets, which quiet partitions
      // are caught up; a broker that does not answer stops those reports
      reportsCaughtUp: true,
      events,
      commit: (positions: ReadonlyArray<Position>) =>
        Effect.sync(() => {
          for (const p of positions) pendingCommits.set(partitionId(p), p)
        }),
      partitionsPerTopic: partitionCount,
      handedOn: () => new Map([...slots.values()].filter((s) => s.state === "ready").map((s) => [s.id, s.next])),
      joins: () => joins,
      health: () => {
        if (unreachable !== undefined) {
          return { ok: false, detail: `Kafka broker unreachable since ${new Date(unreachable.since).toISOString()}: ${unreachable.error}` }
        }
        if (crashed !== undefined) {
          return { ok: false, detail: `Kafka consumer rejoining group ${options.groupId} since ${new Date(crashed.since).toISOString()}: ${crashed.error}` }
        }
        return { ok: true }
      }
    } satisfies KafkaSource<E>
  })
