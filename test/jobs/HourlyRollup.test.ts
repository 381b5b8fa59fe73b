/**
 * The hourly rollup on a real PostgreSQL, fed through the real sink (which marks the hours
 * it writes): hour H is rolled only once the global watermark (every partition's committed
 * watermark) passes H + 1 h; a late checkout written for a rolled hour rolls it again; the
 * values of each dimension partition the hour's checkouts; the sums equal an independent
 * computation from checkout_attribution; rolling again changes nothing but rolled_at.
 */
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { AttributionRow, Sourced } from "../../src/domain/Rows.ts"
import type { TaskClaim, TaskPosition } from "../../src/engine/Topology.ts"
import { SqlClient } from "effect/sql"
import * as HourlyRollup from "../../src/jobs/HourlyRollup.ts"
import * as Database from "../../src/sinks/Database.ts"
import * as PgSink from "../../src/sinks/PgSink.ts"
import * as TaskOwnership from "../../src/sinks/TaskOwnership.ts"
import { createDatabase, dropDatabase, postgresAvailable, query } from "../support/TestDatabase.ts"

const pgOk = await postgresAvailable()
const SOURCE = "kafka:rollup-test"
const H = Date.parse("2026-11-23T10:00:00Z")
const iso = (ms: number) => new Date(ms).toISOString()

let n = 0
const checkout = (ts: number, o: Partial<AttributionRow> = {}): Sourced<AttributionRow> => {
  n++
  return {
    row: {
      checkout_id: `k${n}`, user_id: "u1", product_id: "p1", quantity: 2, shipping_cost: 1, discount: 0, payment_method: "Visa",
      payment_status: "Success", payment_description: "None", shipping_address: null, checkout_timestamp: iso(ts), gender: "F",
      category: "Shoes", product_name: "x", brand: "b", total_amount: "20.00", profit: "2.50", click_id: "c1", source: "Google",
      click_timestamp: iso(ts - 1_000), is_late: false, written_at: iso(ts), ...o
    },
    origin: { input: SOURCE, topic: "checkouts", partition: 0, offset: n, payload: "{}" }
  }
}

/** Both topics' partition 0 and 1 (4 positions): the global watermark is their minimum. */
const positions = (claims: ReadonlyArray<TaskClaim>, watermarks: readonly [number, number]): Array<TaskPosition> =>
  claims.flatMap((c) => ["clicks", "checkouts"].map((topic): TaskPosition => ({
    topic, partition: c.task, nextOffset: n, restartOffset: 0, maxEventTime: watermarks[c.task]!, watermark: watermarks[c.task]!, task: c.task, epoch: c.epoch
  })))

describe.skipIf(!pgOk)("hourly rollup on PostgreSQL", () => {
  let db: { url: string; name: string }
  beforeAll(async () => { db = await createDatabase("insights_rollup") })
  afterAll(async () => { if (db) await dropDatabase(db.name) })

  const run = <A>(f: (write: (rows: Array<Sourced<AttributionRow>>, wm: readonly [number, number]) => Effect.Effect<unknown, unknown>, roll: Effect.Effect<number, unknown>) => Effect.Effect<A, unknown>) =>
    Effect.runPromise(Effect.gen(function*() {
      const sink = yield* PgSink.make({ sourceName: SOURCE, job: "attribution" })
      const sql = yield* SqlClient.SqlClient
      const claims = yield* (yield* TaskOwnership.make(SOURCE)).claim([0, 1])
      const write = (rows: Array<Sourced<AttributionRow>>, wm: readonly [number, number]) =>
        sink.write({ attribution: rows, late: [], errors: [], positions: positions(claims, wm), claims })
      return yield* f(write, HourlyRollup.rollDue(SOURCE, "attribution", 4).pipe(Effect.provideService(SqlClient.SqlClient, sql)))
    }).pipe(Effect.provide(Database.layer(db.url)), Effect.scoped))

  const rollup = () => query<{ hour: Date; dimension: string; value: string; checkouts: number; paid_checkouts: number; units: string; revenue: string; profit: string }>(db.url,
    `SELECT hour, dimension, value, checkouts, paid_checkouts, units::text, revenue::text, profit::text FROM shop.hourly_rollup ORDER BY hour, dimension, value`)

  it("rolls hour H only once every partition's watermark has passed H + 1h", async () => {
    const rolled = await run((write, roll) => Effect.gen(function*() {
      yield* write([
        checkout(H + 60_000),
        checkout(H + 120_000, { payment_status: "Failed", payment_description: "Card declined", source: null, total_amount: "30.00", profit: "3.00" }),
        checkout(H + 180_000, { gender: null, category: "", quantity: 5, total_amount: null, profit: null }),
        checkout(H + 3_600_000 + 5_000) // the next hour
      ], [H + 3_600_000 + 10_000, H + 1_800_000]) // partition 1 is still in hour H
      const early = yield* roll
      yield* write([], [H + 3_600_000 + 10_000, H + 3_600_000]) // now both have passed H + 1h
      const due = yield* roll
      return [early, due]
    }))
    expect(rolled).toEqual([0, 1])
    const rows = await rollup()
    expect(rows.every((r) => r.hour.getTime() === H)).toBe(true)
    const by = (d: string) => rows.filter((r) => r.dimension === d).map((r) => [r.value, r.checkouts, r.paid_checkouts, r.units, r.revenue, r.profit])
    expect(by("source")).toEqual([["Google", 2, 2, "7", "20.00", "2.50"], ["Unattributed", 1, 0, "0", "0.00", "0.00"]])
    expect(by("category")).toEqual([["Shoes", 2, 1, "2", "20.00", "2.50"], ["Unknown", 1, 1, "5", "0.00", "0.00"]])
    expect(by("gender")).toEqual([["F", 2, 1, "2", "20.00", "2.50"], ["Unknown", 1, 1, "5", "0.00", "0.00"]])
    expect(by("payment")).toEqual([["Card declined", 1, 0, "0", "0.00", "0.00"], ["None", 2, 2, "7", "20.00", "2.50"]])
  })

  it("a late checkout for a rolled hour rolls it again; rolling again changes nothing else", async () => {
    const before = await rollup()
    await run((write, roll) => Effect.gen(function*() {
      yield* roll // nothing new: nothing changes
      yield* write([checkout(H + 1_000, { is_late: true, source: "Tiktok", total_amount: "1.25", profit: "0.10", quantity: 1 })], [H + 3_600_000 + 10_000, H + 3_600_000])
      yield* roll
    }))
    const after = await rollup()
    expect(after).not.toEqual(before)
    const tiktok = after.find((r) => r.dimension === "source" && r.value === "Tiktok")
    expect(tiktok).toMatchObject({ checkouts: 1, paid_checkouts: 1, units: "1", revenue: "1.25" })
    // each dimension's values partition the hour's checkouts, and the sums equal an independent computation
    const [truth] = await query<{ n: number; paid: number; units: string; revenue: string; profit: string }>(db.url, `
      SELECT count(*)::int AS n, count(*) FILTER (WHERE payment_status = 'Success')::int AS paid,
             coalesce(sum(quantity) FILTER (WHERE payment_status = 'Success'), 0)::text AS units,
             coalesce(sum(total_amount) FILTER (WHERE payment_status = 'Success'), 0)::text AS revenue,
             coalesce(sum(profit) FILTER (WHERE payment_status = 'Success'), 0)::text AS profit
      FROM shop.checkout_attribution WHERE checkout_timestamp >= $1 AND checkout_timestamp < $2`, [iso(H), iso(H + 3_600_000)])
    for (const d of ["source", "category", "gender", "payment"]) {
      const rows = after.filter((r) => r.dimension === d)
      const sum = (f: (r: typeof rows[number]) => number) => rows.reduce((a, r) => a + f(r), 0)
      expect([sum((r) => r.checkouts), sum((r) => r.paid_checkouts), String(sum((r) => Number(r.units))),
        sum((r) => Number(r.revenue)).toFixed(2), sum((r) => Number(r.profit)).toFixed(2)]).toEqual([truth!.n, truth!.paid, truth!.units, truth!.revenue, truth!.profit])
    }
    expect(await query(db.url, "SELECT hour FROM shop.rollup_pending WHERE hour = $1", [iso(H)])).toEqual([])
  })
})
