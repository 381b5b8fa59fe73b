/**
 * The recommendations sink on a real PostgreSQL: lists land in shop.user_recommendations
 * within RECS_WRITE_MS (newest per user wins, a shorter list leaves no stale ranks); a
 * snapshot is stored with its task's positions in one transaction and a new owner's restore
 * resumes from both; a stale owner writes nothing and is told it is fenced.
 */
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { TaskClaim, TaskPosition } from "../../src/engine/Topology.ts"
import * as Recommender from "../../src/jobs/Recommender.ts"
import type { ProductInfo } from "../../src/recs/Model.ts"
import * as Database from "../../src/sinks/Database.ts"
import * as RecommendationSink from "../../src/sinks/RecommendationSink.ts"
import * as TaskOwnership from "../../src/sinks/TaskOwnership.ts"
import { createDatabase, dropDatabase, postgresAvailable, query } from "../support/TestDatabase.ts"

const pgOk = await postgresAvailable()
const SOURCE = "kafka:recs-test"
const T = Date.parse("2026-11-20T10:00:00Z")
const catalog = (id: string): ProductInfo | undefined => ({ category: Number(id.slice(1)) < 5 ? "dresses" : "shoes", brand: "b" })

const position = (claim: TaskClaim, topic: string, nextOffset: number): TaskPosition => ({
  topic, partition: claim.task, nextOffset, restartOffset: nextOffset, maxEventTime: T, watermark: T, task: claim.task, epoch: claim.epoch
})
const list = (task: number, userId: string, products: ReadonlyArray<string>, updatedAt = T): Recommender.RecList => ({
  _tag: "List", task, userId, updatedAt, items: products.map((productId, i) => ({ productId, score: 1 - i / 10 }))
})

describe.skipIf(!pgOk)("RecommendationSink on PostgreSQL", () => {
  let db: { url: string; name: string }
  beforeAll(async () => { db = await createDatabase("insights_recs") })
  afterAll(async () => { if (db) await dropDatabase(db.name) })

  const run = <A>(f: (env: {
    recs: Recommender.Recommenders
    sink: Effect.Success<ReturnType<typeof RecommendationSink.make>>
    claim: (tasks: Array<number>) => Effect.Effect<ReadonlyArray<TaskClaim>, unknown>
  }) => Effect.Effect<A, unknown>, testClock = false) =>
    Effect.runPromise(Effect.gen(function*() {
      const recs = new Recommender.Recommenders(catalog)
      const sink = yield* RecommendationSink.make({ sourceName: SOURCE, job: Recommender.JOB, writeEveryMs: 500, maxPendingUsers: 1_000, keepState: true }, recs)
      const ownership = yield* TaskOwnership.make(SOURCE, "test-owner")
      return yield* f({ recs, sink, claim: (tasks) => ownership.claim(tasks) })
    }).pipe(testClock ? Effect.provide(TestClock.layer()) : (e) => e, Effect.provide(Database.layer(db.url)), Effect.scoped))

  /** what a background write has done, by the wall clock (the sink's own clock may be a TestClock) */
  const settled = <A>(read: () => Promise<A>, ok: (a: A) => boolean) =>
    Effect.promise(async () => {
      for (let i = 0; i < 100; i++) {
        const a = await read()
        if (ok(a)) return a
        await new Promise((r) => setTimeout(r, 20))
      }
      return read()
    })

  const rows = (user: string) =>
    query<{ rank: number; product_id: string }>(db.url, "SELECT rank, product_id FROM shop.user_recommendations WHERE user_id = $1 ORDER BY rank", [user])

  it("writes each user's newest list within RECS_WRITE_MS; a shorter list leaves no stale ranks", async () => {
    await run(({ sink, claim }) => Effect.gen(function*() {
      const [c] = yield* claim([0])
      const ten = Array.from({ length: 10 }, (_, i) => `p${i}`)
      yield* sink.sink.write({ job: "recommendations", outputs: [list(0, "u1", ["p9"]), list(0, "u1", ten)], rejected: [], positions: [], claims: [c!] })
      yield* TestClock.adjust("400 millis")
      yield* Effect.promise(() => new Promise((r) => setTimeout(r, 200)))
      expect(yield* Effect.promise(() => rows("u1")), "not before RECS_WRITE_MS").toEqual([])
      yield* TestClock.adjust("100 millis")
      expect((yield* settled(() => rows("u1"), (r) => r.length > 0)).map((r) => r.product_id)).toEqual(ten)
      yield* sink.sink.write({ job: "recommendations", outputs: [list(0, "u1", ["p3", "p4"])], rejected: [], positions: [], claims: [c!] })
      yield* TestClock.adjust("500 millis")
      expect(yield* settled(() => rows("u1"), (r) => r.length === 2)).toEqual([{ rank: 1, product_id: "p3" }, { rank: 2, product_id: "p4" }])
    }), true)
  })

  it("stores a snapshot with its task's positions; a new owner restores both", async () => {
    const original = await run(({ recs, sink, claim }) => Effect.gen(function*() {
      const [c] = yield* claim([3])
      const m = recs.create(3)
      for (let i = 0; i < 20; i++) m.model.observe(`u${i % 4}`, `p${i % 7}`, "view", T + i * 1_000)
      m.clock = T + 20_000
      const snapshot: Recommender.RecSnapshot = { _tag: "Snapshot", task: 3, takenAt: T, json: JSON.stringify(m.snapshot()) }
      // the clicks position came in an earlier batch: the snapshot carries the task's newest of every partition
      yield* sink.sink.write({ job: "recommendations", outputs: [], rejected: [], positions: [position(c!, "clicks", 20)], claims: [c!] })
      yield* sink.sink.write({ job: "recommendations", outputs: [snapshot], rejected: [], positions: [position(c!, "checkouts", 4)], claims: [c!] })
      yield* sink.writePending
      return { u1: recs.lookup("u1"), popular: recs.popular() }
    }))
    const stored = await query<{ topic: string; next_offset: string }>(db.url,
      "SELECT topic, next_offset::text FROM shop.source_positions WHERE source = $1 AND job = 'recommendations' ORDER BY topic", [SOURCE])
    expect(stored).toEqual([{ topic: "checkouts", next_offset: "4" }, { topic: "clicks", next_offset: "20" }])

    const restored = await run(({ recs, sink, claim }) => Effect.gen(function*() {
      yield* claim([3])
      recs.create(3)
      const positions = yield* sink.recall.positions([{ topic: "clicks", partition: 3 }, { topic: "checkouts", partition: 3 }])
      return { positions: positions.map((p) => [p.topic, p.nextOffset]).sort(), u1: recs.lookup("u1"), popular: recs.popular() }
    }))
    expect(restored.positions).toEqual([["checkouts", 4], ["clicks", 20]])
    expect(restored.u1).toEqual(original.u1)
    expect(restored.popular).toEqual(original.popular)
  })

  it("a stale owner writes nothing and is told it is fenced at its next batch", async () => {
    await run(({ sink, claim }) => Effect.gen(function*() {
      const [old] = yield* claim([5])
      yield* claim([5]) // another member claims task 5
      yield* sink.sink.write({ job: "recommendations", outputs: [list(5, "fenced-user", ["p1"])], rejected: [], positions: [position(old!, "clicks", 9)], claims: [old!] })
      yield* sink.writePending
      const next = yield* sink.sink.write({ job: "recommendations", outputs: [], rejected: [], positions: [], claims: [old!] })
      expect(next.fenced).toEqual([5])
    }))
    expect(await rows("fenced-user")).toEqual([])
  })
})
