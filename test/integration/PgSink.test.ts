/**
 * The PostgreSQL sink on a real server: a batch with rows PostgreSQL refuses writes every
 * other row and records the refused ones as ingest errors (bisection); a payload PostgreSQL
 * text cannot hold is stored escaped; ingest errors never collide and never double; a stale
 * owner's batch writes nothing (fence); a position never moves back within an epoch.
 */
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { AttributionRow, IngestErrorRow, Sourced } from "../../src/domain/Rows.ts"
import type { TaskClaim, TaskPosition } from "../../src/engine/Topology.ts"
import * as Database from "../../src/sinks/Database.ts"
import * as PgSink from "../../src/sinks/PgSink.ts"
import * as TaskOwnership from "../../src/sinks/TaskOwnership.ts"
import { createDatabase, dropDatabase, postgresAvailable, query } from "../support/TestDatabase.ts"

const pgOk = await postgresAvailable()
const SOURCE = "kafka:test"
const at = "2026-11-23T12:00:00.000Z"

const row = (i: number, overrides: Partial<AttributionRow> = {}): Sourced<AttributionRow> => ({
  row: {
    checkout_id: `k${i}`, user_id: "u1", product_id: "p1", quantity: 1, shipping_cost: 1, discount: 0,
    payment_method: "Visa", payment_status: "Success", payment_description: "None", shipping_address: null,
    checkout_timestamp: at, gender: null, category: null, product_name: null, brand: null, total_amount: "10.00",
    profit: "1.00", click_id: null, source: null, click_timestamp: null, is_late: false, written_at: at, ...overrides
  },
  origin: { input: SOURCE, topic: "checkouts", partition: 0, offset: i, payload: `{"checkout_id":"k${i}"}` }
})

const error = (offset: number, overrides: Partial<IngestErrorRow> = {}): IngestErrorRow => ({
  input: SOURCE, source: "clicks", partition: 0, offset, payload: "not json", error: "not JSON", recorded_at: at, ...overrides
})

const position = (claim: TaskClaim, nextOffset: number): TaskPosition => ({
  topic: "checkouts", partition: claim.task, nextOffset, restartOffset: nextOffset, maxEventTime: Date.parse(at), watermark: Date.parse(at),
  task: claim.task, epoch: claim.epoch
})

describe.skipIf(!pgOk)("PgSink on PostgreSQL", () => {
  let db: { url: string; name: string }
  beforeAll(async () => { db = await createDatabase("insights_sink") })
  afterAll(async () => { if (db) await dropDatabase(db.name) })

  const withSink = <A>(f: (sink: PgSink.PgSink, claim: (tasks: Array<number>) => Effect.Effect<ReadonlyArray<TaskClaim>, unknown>) => Effect.Effect<A, unknown>) =>
    Effect.runPromise(Effect.gen(function*() {
      const sink = yield* PgSink.make({ sourceName: SOURCE, job: "attribution" })
      const ownership = yield* TaskOwnership.make(SOURCE, "test-owner")
      return yield* f(sink, (tasks) => ownership.claim(tasks))
    }).pipe(Effect.provide(Database.layer(db.url)), Effect.scoped))

  it("writes every other row of a batch with rows PostgreSQL refuses, and records those as ingest errors", async () => {
    const hugeId = randomBytes(4_000).toString("hex") // 8 000 characters: over btree's index row limit
    const result = await withSink((sink, claim) => Effect.gen(function*() {
      const [c] = yield* claim([0])
      const rows = Array.from({ length: 40 }, (_, i) => row(i))
      rows[7] = row(7, { quantity: 3_000_000_000 }) // integer out of range
      rows[23] = row(23, { checkout_id: hugeId })
      rows[31] = row(31, { total_amount: "99999999999999.99" }) // numeric(12,2) overflow
      return yield* sink.write({ attribution: rows, late: [], errors: [error(1)], positions: [position(c!, 40)], claims: [c!] })
    }))
    expect(result.fenced).toEqual([])
    expect(result.refused.map((r) => r.offset).sort((a, b) => a - b)).toEqual([7, 23, 31])
    const written = await query<{ checkout_id: string }>(db.url, "SELECT checkout_id FROM shop.checkout_attribution")
    expect(written.map((r) => r.checkout_id).sort()).toEqual(Array.from({ length: 40 }, (_, i) => `k${i}`).filter((k) => !["k7", "k23", "k31"].includes(k)).sort())
    const errors = await query<{ offset: string; error: string; source: string }>(db.url, `SELECT "offset"::text, error, source FROM shop.ingest_errors ORDER BY "offset"`)
    expect(errors.map((e) => Number(e.offset)).sort((a, b) => a - b)).toEqual([1, 7, 23, 31])
    for (const e of errors.filter((e) => e.offset !== "1")) expect(e.error).toMatch(/^refused by PostgreSQL: /)
    expect(errors.find((e) => e.offset === "7")!.error).toMatch(/out of range/)
    const [p] = await query<{ next_offset: string }>(db.url, `SELECT next_offset::text FROM shop.source_positions WHERE source = $1`, [SOURCE])
    expect(p!.next_offset).toBe("40")
  })

  it("stores payloads PostgreSQL text cannot hold (NUL, lone surrogates) escaped; never collides, never doubles", async () => {
    await withSink((sink, claim) => Effect.gen(function*() {
      const [c] = yield* claim([0])
      const errors = [
        error(100, { payload: "a\u0000b", error: "bad \u0000" }),
        error(101, { payload: "x\ud800y" }),
        error(102, { input: "file:/tmp/clicks.txt" }), error(102), // same coordinates, another input
        error(103, { payload: "one" }), error(103, { payload: "two" }) // same coordinates, another message (a recreated topic)
      ]
      yield* sink.write({ attribution: [], late: [], errors, positions: [], claims: [c!] })
      yield* sink.write({ attribution: [], late: [], errors, positions: [], claims: [c!] }) // redelivered: nothing doubles
    }))
    const rows = await query<{ offset: string; input: string; payload: string; error: string }>(db.url,
      `SELECT "offset"::text, input, payload, error FROM shop.ingest_errors WHERE "offset" >= 100 ORDER BY "offset", input, payload`)
    expect(rows.map((r) => [Number(r.offset), r.input, r.payload])).toEqual([
      [100, SOURCE, "a\\u0000b"], [101, SOURCE, "x\\ud800y"],
      [102, "file:/tmp/clicks.txt", "not json"], [102, SOURCE, "not json"],
      [103, SOURCE, "one"], [103, SOURCE, "two"]
    ])
    expect(rows[0]!.error).toBe("bad \\u0000")
  })

  it("fences a stale owner: its batch writes nothing once another member has claimed the task", async () => {
    const before = await query<{ n: number }>(db.url, "SELECT count(*)::int AS n FROM shop.checkout_attribution")
    const result = await withSink((sink, claim) => Effect.gen(function*() {
      const [old] = yield* claim([0])
      yield* claim([0]) // another member takes task 0
      return yield* sink.write({ attribution: [row(500)], late: [], errors: [error(500)], positions: [position(old!, 1_000)], claims: [old!] })
    }))
    expect(result.fenced).toEqual([0])
    const after = await query<{ n: number }>(db.url, "SELECT count(*)::int AS n FROM shop.checkout_attribution")
    expect(after[0]!.n).toBe(before[0]!.n)
    expect(await query(db.url, `SELECT 1 FROM shop.ingest_errors WHERE "offset" = 500`)).toEqual([])
    const [p] = await query<{ next_offset: string }>(db.url, `SELECT next_offset::text FROM shop.source_positions WHERE source = $1`, [SOURCE])
    expect(p!.next_offset).toBe("40")
  })

  it("never moves a position back within an epoch; a new owner's epoch may set it anew", async () => {
    const read = async () => (await query<{ next_offset: string; epoch: string }>(db.url,
      `SELECT next_offset::text, epoch::text FROM shop.source_positions WHERE source = $1 AND "partition" = 3`, [SOURCE]))[0]
    await withSink((sink, claim) => Effect.gen(function*() {
      const [c] = yield* claim([3])
      yield* sink.write({ attribution: [], late: [], errors: [], positions: [position(c!, 100)], claims: [c!] })
      yield* sink.write({ attribution: [], late: [], errors: [], positions: [position(c!, 50)], claims: [c!] })
    }))
    expect(await read()).toMatchObject({ next_offset: "100" })
    await withSink((sink, claim) => Effect.gen(function*() {
      const [c] = yield* claim([3])
      yield* sink.write({ attribution: [], late: [], errors: [], positions: [position(c!, 60)], claims: [c!] })
    }))
    expect(await read()).toMatchObject({ next_offset: "60" })
  })
})
