/**
 * The in-process synthetic store as a source (the embedded default): messages are produced
 * at `rate` per second of processing time, stamped with the clock's time, keyed by user and
 * spread over `partitions` partitions per topic as a Kafka producer would (same user, same
 * partition number on both topics). Deterministic for a seed.
 */
import { Clock, Effect, Schedule, Stream } from "effect"
import { hashKey } from "../engine/KeyedState.ts"
import type { Envelope, PartitionRef, SourceEvent, UnboundedSource } from "../engine/Source.ts"
import { makeProducts, makeUsers } from "../generator/Catalog.ts"
import { makeSimulator } from "../generator/Shoppers.ts"
import { defaultData } from "../generator/writeData.ts"

export interface GeneratorOptions {
  readonly seed: number
  /** messages per second */
  readonly rate: number
  readonly partitions: number
  readonly topics: { readonly clicks: string; readonly checkouts: string }
  /** how often a batch is produced */
  readonly tickMs?: number
  /** when this run started: a generator run never resumes another one's positions */
  readonly startedAt: number
}

export const make = (options: GeneratorOptions): UnboundedSource<never> => {
  const { seed, rate, partitions, topics } = options
  const tickMs = options.tickMs ?? 100
  const refs: Array<PartitionRef> = []
  for (const topic of [topics.clicks, topics.checkouts]) for (let p = 0; p < partitions; p++) refs.push({ topic, partition: p })

  const events = Stream.unwrap(Effect.sync(() => {
    const simulator = makeSimulator({
      seed,
      users: makeUsers(defaultData.userSeed, defaultData.userCount),
      products: makeProducts(defaultData.productSeed, defaultData.productCount)
    })
    const offsets = new Map<string, number>()
    let owed = 0
    let last: number | undefined
    const batch = Effect.map(Clock.currentTimeMillis, (now): Array<SourceEvent> => {
      // what is owed for the time that actually passed (a tick is `tickMs` plus the time the
      // engine took), so the rate holds; at most a second's worth at once after a pause
      owed += rate * Math.min(1_000, last === undefined ? tickMs : Math.max(0, now - last)) / 1000
      last = now
      const n = Math.floor(owed)
      owed -= n
      const byPartition = new Map<string, Array<Envelope>>()
      for (let i = 0; i < n; i++) {
        const m = simulator.next(now)
        const topic = m.topic === "clicks" ? topics.clicks : topics.checkouts
        const partition = hashKey(m.key) % partitions
        const id = `${topic}/${partition}`
        const offset = offsets.get(id) ?? 0
        offsets.set(id, offset + 1)
        let list = byPartition.get(id)
        if (list === undefined) byPartition.set(id, list = [])
        list.push({ topic, partition, offset, key: m.key, value: m.value })
      }
      return [...byPartition.values()].map((records) => ({
        _tag: "Records" as const,
        topic: records[0]!.topic,
        partition: records[0]!.partition,
        records,
        backlog: false,
        highWatermark: records[records.length - 1]!.offset + 1
      }))
    })
    const assigned: SourceEvent = { _tag: "Assigned", partitions: refs }
    return Stream.concat(
      Stream.make(assigned),
      Stream.fromEffectSchedule(batch, Schedule.spaced(tickMs)).pipe(Stream.flatMap((events) => Stream.fromIterable(events)))
    )
  }))

  return { _tag: "Unbounded", name: `generator:${seed}@${options.startedAt}`, partitionsPerTopic: partitions, events, commit: () => Effect.void }
}
