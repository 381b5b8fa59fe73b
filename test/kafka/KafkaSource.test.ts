/**
 * The Kafka source on a real broker, without the engine: topic setup, Assigned before
 * Records, keys and values as sent, starting at the stored positions (not the group's
 * committed offsets), bounded handoff with heartbeats, idle reports.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import type { PartitionRef, Records, SourceEvent } from "../../src/engine/Source.ts"
import * as KafkaSource from "../../src/sources/KafkaSource.ts"
import type { SourceError } from "../../src/sources/SourceError.ts"
import { committedOffsets, createTopics, endOffsets, kafkaBrokers, produce, uniqueName } from "../support/Kafka.ts"

const brokers = await kafkaBrokers()

// generous: the first group join on a freshly started broker also creates __consumer_offsets (seen taking over 20 s in CI)
const waitUntil = (what: string, cond: () => boolean, timeoutMs = 45_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (!cond()) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("25 millis")
    }
  })

/** Runs the source's stream into an array (in a fiber of the test's scope). */
const collect = (source: { readonly events: Stream.Stream<SourceEvent, unknown> }, perEvent?: (e: SourceEvent) => Effect.Effect<void>) =>
  Effect.gen(function*() {
    const events: Array<SourceEvent> = []
    const fiber = yield* Effect.forkScoped(Stream.runForEach(source.events, (e) =>
      Effect.sync(() => events.push(e)).pipe(Effect.andThen(perEvent ? perEvent(e) : Effect.void))))
    return { events, fiber }
  })

const recordsOf = (events: ReadonlyArray<SourceEvent>) =>
  events.filter((e): e is Records => e._tag === "Records").flatMap((e) => e.records)

const options = (topics: ReadonlyArray<string>, groupId: string, extra: Partial<KafkaSource.KafkaSourceOptions<never>> = {}): KafkaSource.KafkaSourceOptions<never> => ({
  brokers: brokers!.split(","),
  groupId,
  topics,
  partitions: 4,
  startOffsets: () => Effect.succeed([]),
  idlePollMs: 300,
  ...extra
})

describe("co-partitioned assignment", () => {
  it("gives partition n of every topic to the same member, round-robin over members", () => {
    const plan = KafkaSource.assignCoPartitioned(["b", "a", "c"], [
      { topic: "clicks", partitions: [0, 1, 2, 3] },
      { topic: "checkouts", partitions: [3, 2, 1, 0] }
    ])
    assert.deepStrictEqual(Object.fromEntries(plan), {
      a: { clicks: [0, 3], checkouts: [0, 3] },
      b: { clicks: [1], checkouts: [1] },
      c: { clicks: [2], checkouts: [2] }
    })
    assert.deepStrictEqual(Object.fromEntries(KafkaSource.assignCoPartitioned(["m"], [{ topic: "t", partitions: [1, 0] }])), { m: { t: [0, 1] } })
  })

  const numbersOf = (plan: Map<string, Record<string, Array<number>>>) =>
    Object.fromEntries([...plan].map(([m, a]) => [m, a["t"] ?? []]))
  const twelve = [{ topic: "t", partitions: Array.from({ length: 12 }, (_, i) => i) }]
  const moved = (before: Record<string, Array<number>>, after: Record<string, Array<number>>) => {
    let n = 0
    for (const [m, ps] of Object.entries(after)) for (const p of ps) if (!(before[m] ?? []).includes(p)) n++
    return n
  }

  it("sticky: a member joining takes only its share, each from the others; the rest stay where they are", () => {
    const before = numbersOf(KafkaSource.assignCoPartitioned(["a", "b", "c"], twelve))
    const after = numbersOf(KafkaSource.assignCoPartitioned([
      { id: "a", owned: before["a"]! }, { id: "b", owned: before["b"]! }, { id: "c", owned: before["c"]! }, { id: "d", owned: [] }
    ], twelve))
    for (const m of ["a", "b", "c", "d"]) assert.strictEqual(after[m]!.length, 3, m)
    assert.strictEqual(moved(before, after), 3, "only the new member's three partitions moved")
    for (const m of ["a", "b", "c"]) for (const p of after[m]!) assert.include(before[m]!, p, `${m} kept what it had`)
  })

  it("sticky: a member leaving hands only its own partitions to the others", () => {
    const before = numbersOf(KafkaSource.assignCoPartitioned(["a", "b", "c", "d"], twelve))
    const after = numbersOf(KafkaSource.assignCoPartitioned([
      { id: "a", owned: before["a"]! }, { id: "b", owned: before["b"]! }, { id: "d", owned: before["d"]! }
    ], twelve))
    assert.strictEqual(moved(before, after), before["c"]!.length)
    assert.deepStrictEqual([...after["a"]!, ...after["b"]!, ...after["d"]!].sort((x, y) => x - y), twelve[0]!.partitions)
    for (const m of ["a", "b", "d"]) assert.strictEqual(after[m]!.length, 4, m)
  })

  it("sticky: a partition two members claim (a stale one) goes to one; an unknown partition is ignored; still balanced", () => {
    const plan = numbersOf(KafkaSource.assignCoPartitioned([
      { id: "a", owned: [0, 1, 2, 3, 4, 5, 99] }, { id: "b", owned: [0, 1] }
    ], [{ topic: "t", partitions: [0, 1, 2, 3, 4, 5] }]))
    assert.deepStrictEqual(plan, { a: [0, 1, 2], b: [3, 4, 5] })
  })
})

describe.skipIf(brokers === undefined)("KafkaSource on a real broker", () => {
  it.live("creates missing topics with the configured partition count", () =>
    Effect.gen(function*() {
      const topics = [uniqueName("clicks"), uniqueName("checkouts")]
      const source = yield* KafkaSource.make(options(topics, uniqueName("g"), { partitions: 3 }))
      assert.strictEqual(source.name.startsWith("kafka:g-"), true)
      for (const t of topics) assert.strictEqual((yield* Effect.promise(() => endOffsets(brokers!, t))).size, 3)
    }))

  it.live("refuses topics that are not co-partitioned, with a clear error", () =>
    Effect.gen(function*() {
      const clicks = uniqueName("clicks"), checkouts = uniqueName("checkouts")
      yield* Effect.promise(() => createTopics(brokers!, [clicks], 4))
      yield* Effect.promise(() => createTopics(brokers!, [checkouts], 2))
      const error = yield* Effect.flip(KafkaSource.make(options([clicks, checkouts], uniqueName("g"))))
      assert.strictEqual((error as SourceError).reason, "TopicMismatch")
      assert.include(error.message, `${clicks} (4 partitions) and ${checkouts} (2 partitions)`)
    }))

  it.live("emits Assigned before any Records, then every message once with its key and value as sent", () =>
    Effect.gen(function*() {
      const clicks = uniqueName("clicks"), checkouts = uniqueName("checkouts")
      yield* Effect.promise(() => createTopics(brokers!, [clicks, checkouts], 4))
      const keyed = Array.from({ length: 400 }, (_, i) => ({ key: `u${i % 37}`, value: JSON.stringify({ n: i, text: "é€😀" }) }))
      yield* Effect.promise(() => produce(brokers!, clicks, [...keyed, { key: null, value: "no key", partition: 2 }, { key: "u1", value: null, partition: 3 }]))
      yield* Effect.promise(() => produce(brokers!, checkouts, [{ key: "\u00e9t\u00e9", value: "k1", partition: 1 }]))
      const source = yield* KafkaSource.make(options([clicks, checkouts], uniqueName("g")))
      const { events } = yield* collect(source)
      yield* waitUntil("all records", () => recordsOf(events).length === 403)

      assert.strictEqual(events[0]!._tag, "Assigned")
      const assigned = (events[0] as { partitions: ReadonlyArray<PartitionRef> }).partitions
      assert.strictEqual(assigned.length, 8)
      // before its first non-empty batch, every partition reported where it stands
      const firstEmpty = new Set<string>()
      for (const e of events.slice(1)) {
        if (e._tag !== "Records") continue
        const id = `${e.topic}/${e.partition}`
        if (e.records.length === 0) firstEmpty.add(id)
        else assert.isTrue(firstEmpty.has(id), `${id}: records before its initial report`)
      }
      assert.strictEqual(firstEmpty.size, 8)

      const records = recordsOf(events)
      const clickRecords = records.filter((r) => r.topic === clicks)
      assert.deepStrictEqual(clickRecords.filter((r) => r.key !== null && r.value !== "").map((r) => r.value).sort(), keyed.map((m) => m.value).sort())
      assert.deepStrictEqual(records.find((r) => r.value === "no key")!.key, null)
      const tombstone = records.find((r) => r.topic === clicks && r.partition === 3 && r.value === "")!
      assert.strictEqual(tombstone.key, "u1")
      assert.deepStrictEqual(records.filter((r) => r.topic === checkouts).map((r) => [r.key, r.value, r.partition]), [["\u00e9t\u00e9", "k1", 1]])
      // per partition: offsets 0..n-1, each once, in order
      const byPartition = new Map<string, Array<number>>()
      for (const r of records) byPartition.set(`${r.topic}/${r.partition}`, [...(byPartition.get(`${r.topic}/${r.partition}`) ?? []), r.offset])
      for (const [, offsets] of byPartition) assert.deepStrictEqual(offsets, offsets.map((_, i) => i))
      // murmur2 keyed: the same key is on one partition
      const partitionsOfU1 = new Set(clickRecords.filter((r) => r.key === "u1" && r.value !== "").map((r) => r.partition))
      assert.strictEqual(partitionsOfU1.size, 1)
    }))

  it.live("starts each partition at its stored position, never at the group's committed offset", () =>
    Effect.gen(function*() {
      const clicks = uniqueName("clicks"), checkouts = uniqueName("checkouts"), group = uniqueName("g")
      yield* Effect.promise(() => createTopics(brokers!, [clicks, checkouts], 4))
      for (let p = 0; p < 4; p++) {
        yield* Effect.promise(() => produce(brokers!, clicks, Array.from({ length: 50 }, (_, i) => ({ key: null, value: `c${p}-${i}`, partition: p }))))
      }
      // a first run reads everything and commits to Kafka: p0 → 50, p1 → 50, p2 → 5, p3 → 30
      yield* Effect.scoped(Effect.gen(function*() {
        const first = yield* KafkaSource.make(options([clicks, checkouts], group, { commitIntervalMs: 100 }))
        const { events } = yield* collect(first)
        yield* waitUntil("first run", () => recordsOf(events).length === 200)
        yield* first.commit([0, 1, 2, 3].map((p) => ({ topic: clicks, partition: p, nextOffset: [50, 50, 5, 30][p]! })))
      }))
      const committed = yield* Effect.promise(() => committedOffsets(brokers!, group, clicks))
      assert.deepStrictEqual([0, 1, 2, 3].map((p) => committed.get(p)), [50, 50, 5, 30])

      // PostgreSQL says: p0 at 10 (behind Kafka: re-read), p1 at 50 (the end), p2 at 20 (ahead of Kafka: skip
      // nothing, repeat nothing), p3 unknown (earliest); checkouts unknown
      const asked: Array<ReadonlyArray<PartitionRef>> = []
      const stored = [{ topic: clicks, partition: 0, offset: 10 }, { topic: clicks, partition: 1, offset: 50 }, { topic: clicks, partition: 2, offset: 20 }]
      const second = yield* KafkaSource.make(options([clicks, checkouts], group, {
        startOffsets: (partitions) => Effect.sync(() => { asked.push(partitions) ; return stored })
      }))
      const { events } = yield* collect(second)
      yield* waitUntil("second run", () => recordsOf(events).length === 40 + 0 + 30 + 50)
      yield* Effect.sleep("1 second") // nothing more may come
      const offsetsOf = (p: number) => recordsOf(events).filter((r) => r.topic === clicks && r.partition === p).map((r) => r.offset)
      assert.deepStrictEqual(offsetsOf(0), Array.from({ length: 40 }, (_, i) => 10 + i))
      assert.deepStrictEqual(offsetsOf(1), [])
      assert.deepStrictEqual(offsetsOf(2), Array.from({ length: 30 }, (_, i) => 20 + i))
      assert.deepStrictEqual(offsetsOf(3), Array.from({ length: 50 }, (_, i) => i))
      assert.strictEqual(asked.length, 1)
      assert.strictEqual(asked[0]!.length, 8)
      // the initial reports: p1 is at its end, p0 has a backlog
      const initial = (p: number) => events.find((e): e is Records => e._tag === "Records" && e.topic === clicks && e.partition === p)!
      assert.deepStrictEqual([initial(0).backlog, initial(0).highWatermark], [true, 50])
      assert.deepStrictEqual([initial(1).backlog, initial(1).highWatermark], [false, 50])

      // records produced after the start arrive too, after the stored ones
      yield* Effect.promise(() => produce(brokers!, clicks, [{ key: null, value: "late-arrival", partition: 1 }]))
      yield* waitUntil("new record", () => recordsOf(events).some((r) => r.value === "late-arrival"))
      assert.deepStrictEqual(offsetsOf(1), [50])
    }))

  it.live("reports quiet partitions: caught up (no backlog) with their end offset, again and again", () =>
    Effect.gen(function*() {
      const clicks = uniqueName("clicks"), checkouts = uniqueName("checkouts")
      yield* Effect.promise(() => createTopics(brokers!, [clicks, checkouts], 2))
      yield* Effect.promise(() => produce(brokers!, clicks, [{ key: null, value: "x", partition: 0 }, { key: null, value: "y", partition: 0 }]))
      const source = yield* KafkaSource.make(options([clicks, checkouts], uniqueName("g"), { idlePollMs: 200 }))
      const { events } = yield* collect(source)
      yield* Effect.sleep("1500 millis")
      const reports = (topic: string, p: number) =>
        events.filter((e): e is Records => e._tag === "Records" && e.topic === topic && e.partition === p && e.records.length === 0)
      for (const [topic, p, high] of [[clicks, 0, 2], [clicks, 1, 0], [checkouts, 0, 0], [checkouts, 1, 0]] as const) {
        const r = reports(topic, p)
        assert.isAtLeast(r.length, 3, `${topic}/${p}`)
        assert.deepStrictEqual([r.at(-1)!.backlog, r.at(-1)!.highWatermark], [false, high])
      }
    }))

  it.live("a second member: Revoked on the first, the moved partitions start at the first's committed positions, no gaps", () =>
    Effect.gen(function*() {
      const clicks = uniqueName("clicks"), checkouts = uniqueName("checkouts"), group = uniqueName("g")
      yield* Effect.promise(() => createTopics(brokers!, [clicks, checkouts], 4))
      const batch = (from: number) => Array.from({ length: 400 }, (_, i) => ({ key: `u${(from + i) % 97}`, value: `m${from + i}` }))
      yield* Effect.promise(() => produce(brokers!, clicks, batch(0)))
      // the "sink": what each member processed, and the positions it committed
      const store = new Map<string, number>()
      const startOffsets = (parts: ReadonlyArray<PartitionRef>) =>
        Effect.sync(() => parts.flatMap((p) => store.has(`${p.topic}/${p.partition}`) ? [{ ...p, offset: store.get(`${p.topic}/${p.partition}`)! }] : []))
      const engine = (name: string, source: KafkaSource.KafkaSource<never>, seen: Array<{ readonly member: string; readonly id: string; readonly offset: number }>) =>
        collect(source, (e) => Effect.gen(function*() {
          if (e._tag !== "Records" || e.records.length === 0) return
          for (const r of e.records) seen.push({ member: name, id: `${r.topic}/${r.partition}`, offset: r.offset })
          const next = e.records.at(-1)!.offset + 1
          store.set(`${e.topic}/${e.partition}`, next)
          yield* source.commit([{ topic: e.topic, partition: e.partition, nextOffset: next }])
        }))
      const seen: Array<{ readonly member: string; readonly id: string; readonly offset: number }> = []
      const a = yield* KafkaSource.make(options([clicks, checkouts], group, { startOffsets, heartbeatIntervalMs: 500, clientId: "member-a" }))
      const { events: aEvents } = yield* engine("a", a, seen)
      yield* waitUntil("a reads the first 400", () => seen.length >= 400)
      const b = yield* KafkaSource.make(options([clicks, checkouts], group, { startOffsets, heartbeatIntervalMs: 500, clientId: "member-b" }))
      const { events: bEvents } = yield* engine("b", b, seen)
      yield* waitUntil("b is assigned", () => bEvents.some((e) => e._tag === "Assigned"), 30_000)
      yield* Effect.promise(() => produce(brokers!, clicks, batch(400)))
      const ends = yield* Effect.promise(() => endOffsets(brokers!, clicks))
      const total = [...ends.values()].reduce((x, y) => x + y, 0)
      assert.strictEqual(total, 800)
      const distinct = () => new Set(seen.map((s) => `${s.id}@${s.offset}`)).size
      yield* waitUntil("all 800 read", () => distinct() === 800, 30_000)

      const revoked = aEvents.filter((e) => e._tag === "Revoked").flatMap((e) => (e as { partitions: ReadonlyArray<PartitionRef> }).partitions)
      const bAssigned = (bEvents.find((e) => e._tag === "Assigned") as { partitions: ReadonlyArray<PartitionRef> }).partitions
      const ids = (refs: ReadonlyArray<PartitionRef>) => refs.map((r) => `${r.topic}/${r.partition}`).sort()
      assert.deepStrictEqual(ids(revoked), ids(bAssigned))
      assert.strictEqual(bAssigned.length, 4)
      // co-partitioned: b has partition n of both topics
      assert.deepStrictEqual(bAssigned.filter((r) => r.topic === clicks).map((r) => r.partition).sort(),
        bAssigned.filter((r) => r.topic === checkouts).map((r) => r.partition).sort())
      // a's kept partitions: each offset once; moved ones: b continued from a's committed position
      const moved = new Set(ids(bAssigned))
      for (const [p, end] of ends) {
        const id = `${clicks}/${p}`
        const offsets = seen.filter((s) => s.id === id).map((s) => s.offset)
        if (!moved.has(id)) {
          assert.deepStrictEqual(offsets, Array.from({ length: end }, (_, i) => i), id)
        } else {
          const byB = seen.filter((s) => s.id === id && s.member === "b").map((s) => s.offset)
          const byA = seen.filter((s) => s.id === id && s.member === "a").map((s) => s.offset)
          assert.deepStrictEqual([...byA, ...byB].filter((o, i, all) => all.indexOf(o) === i).sort((x, y) => x - y), Array.from({ length: end }, (_, i) => i), id)
          if (byB.length > 0) assert.isAtMost(byB[0]!, byA.length === 0 ? 0 : byA.at(-1)! + 1, `${id}: b starts at or before where a stopped`)
        }
      }
    }), 60_000)

  it.live("hands batches on through a bounded queue: a slow engine slows the reads and keeps the group (heartbeats)", () =>
    Effect.gen(function*() {
      const clicks = uniqueName("clicks"), checkouts = uniqueName("checkouts")
      yield* Effect.promise(() => createTopics(brokers!, [clicks, checkouts], 1))
      const total = 60_000
      const pad = "x".repeat(200)
      yield* Effect.promise(() => produce(brokers!, clicks, Array.from({ length: total }, (_, i) => ({ key: null, value: `${i} ${pad}` }))))
      const source = yield* KafkaSource.make(options([clicks, checkouts], uniqueName("g"), {
        queueCapacity: 2, sessionTimeoutMs: 6_000, heartbeatIntervalMs: 1_000
      }))
      let slow = true
      let consumed = 0
      let largest = 0
      let maxAhead = 0
      const { events } = yield* collect(source, (e) => Effect.gen(function*() {
        if (e._tag === "Records") {
          consumed += e.records.length
          largest = Math.max(largest, e.records.length)
          const handed = source.handedOn().get(`${clicks}/0`) ?? 0
          maxAhead = Math.max(maxAhead, handed - consumed)
          if (slow && e.records.length > 0) yield* Effect.sleep("1 second")
        }
      }))
      // longer than the session timeout, with the engine taking one batch a second
      yield* Effect.sleep("7 seconds")
      assert.isBelow(consumed, total / 2, "the slow phase read only part of the topic")
      assert.isAtMost(maxAhead, 4 * largest, "never more than the queue (2) + the taken and the waiting batch ahead")
      slow = false
      yield* waitUntil("the rest", () => consumed >= total)
      const offsets = recordsOf(events).map((r) => r.offset)
      assert.strictEqual(offsets.length, total)
      assert.isTrue(offsets.every((o, i) => o === i), "each offset once, in order")
      assert.strictEqual(source.joins(), 1, "no rebalance: the member heartbeated while it waited")
    }), 60_000)
})
