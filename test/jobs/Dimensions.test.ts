/**
 * The dimension cache's refresh (src/jobs/Dimensions.ts) on a real PostgreSQL: changes made
 * by `load-dims` and by plain SQL are picked up, and so is a transaction that was open during
 * a refresh and commits after it (its timestamp is older than what that refresh saw, so a
 * refresh by `updated_at` missed it forever).
 */
import { Deferred, Effect, Fiber, Layer } from "effect"
import { SqlClient } from "effect/sql"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Dimensions from "../../src/jobs/Dimensions.ts"
import * as LoadDimensions from "../../src/jobs/LoadDimensions.ts"
import * as Database from "../../src/sinks/Database.ts"
import { clientLayer, createDatabase, dropDatabase, postgresAvailable, query } from "../support/TestDatabase.ts"

const available = await postgresAvailable()

describe.skipIf(!available)("Dimensions refresh", () => {
  let db: { url: string; name: string }
  let dir: string
  beforeAll(async () => {
    db = await createDatabase()
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "dims-"))
    await Effect.runPromise(Layer.build(Database.layer(db.url)).pipe(Effect.scoped))
  })
  afterAll(async () => {
    if (db) await dropDatabase(db.name)
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  const csv = (name: string, text: string) => {
    const file = path.join(dir, name)
    fs.writeFileSync(file, text)
    return file
  }

  /** `f` with a dimension cache on its own connection; the background refresh never fires (1 h). */
  const withDimensions = <A>(f: (dims: Dimensions.Dimensions["Service"]) => Effect.Effect<A, unknown, SqlClient.SqlClient>) =>
    Effect.runPromise(Effect.gen(function*() {
      const dims = yield* Dimensions.make(3_600_000)
      return yield* f(dims)
    }).pipe(Effect.scoped, Effect.provide(clientLayer(db.url))))

  it("adds change_xid to users and products, set by a trigger; the loader's upsert still works", async () => {
    const products = csv("p.csv", "product_id,product_name,category,price,commission_rate\nx1,Scarf,accessories,9.50,0.1\n")
    const users = csv("u.csv", "user_id,gender\nux1,F\n")
    await Effect.runPromise(Effect.gen(function*() {
      yield* LoadDimensions.loadProducts(products)
      yield* LoadDimensions.loadUsers(users)
    }).pipe(Effect.provide(clientLayer(db.url))))
    const [p] = await query<{ same: boolean }>(db.url,
      "SELECT change_xid = (SELECT change_xid FROM shop.users WHERE user_id = 'ux1') AS same FROM shop.products WHERE product_id = 'x1'")
    expect(p).toEqual({ same: false }) // two loads, two transactions
    // a write that names the column gets the writer's id anyway
    const [w] = await query<{ mine: boolean }>(db.url, `
      WITH w AS (UPDATE shop.users SET gender = 'M', change_xid = '1' WHERE user_id = 'ux1' RETURNING change_xid)
      SELECT change_xid = pg_current_xact_id() AS mine FROM w`)
    expect(w).toEqual({ mine: true })
    const idx = await query<{ indexname: string }>(db.url,
      "SELECT indexname FROM pg_indexes WHERE schemaname = 'shop' AND indexname LIKE '%change_xid%' ORDER BY 1")
    expect(idx.map((i) => i.indexname)).toEqual(["products_change_xid_idx", "users_change_xid_idx"])
  })

  it("picks up rows loaded, updated and inserted after the first read", async () => {
    await withDimensions((dims) => Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      expect(dims.product("x1")?.name).toBe("Scarf")
      expect(dims.user("ux1")?.gender).toBe("M")
      yield* LoadDimensions.loadProducts(csv("p2.csv", "product_id,product_name,category,price,commission_rate\nx1,Scarf,accessories,11.00,0.1\nx2,Hat,accessories,5,0.2\n"))
      yield* sql`UPDATE shop.users SET gender = 'F' WHERE user_id = 'ux1'` // updated_at untouched
      yield* sql`INSERT INTO shop.users (user_id, gender) VALUES ('ux2', 'M')`
      yield* dims.refresh
      expect(dims.product("x1")).toEqual({ product_id: "x1", name: "Scarf", category: "accessories", brand: null, price: "11.00", commission_rate: "0.100000" })
      expect(dims.product("x2")?.price).toBe("5.00")
      expect(dims.user("ux1")?.gender).toBe("F")
      expect(dims.user("ux2")?.gender).toBe("M")
      // nothing changed: a refresh reads nothing and keeps everything
      yield* dims.refresh
      expect(dims.size()).toEqual({ users: 2, products: 2 })
    }))
  })

  it("a transaction open across a refresh that commits after it is seen by the next refresh", async () => {
    await withDimensions((dims) => Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const opened = yield* Deferred.make<void>()
      const commit = yield* Deferred.make<void>()
      // the slow writer: its own connection, its row written (and timestamped) first, committed last
      const writer = yield* Effect.gen(function*() {
        const w = yield* SqlClient.SqlClient
        yield* w.withTransaction(Effect.gen(function*() {
          yield* w`INSERT INTO shop.products (product_id, name, price) VALUES ('slow', 'Coat', 80)
                   ON CONFLICT (product_id) DO UPDATE SET name = EXCLUDED.name, price = EXCLUDED.price, updated_at = now()`
          yield* Deferred.succeed(opened, undefined)
          yield* Deferred.await(commit)
        }))
      }).pipe(Effect.provide(clientLayer(db.url)), Effect.forkChild)
      yield* Deferred.await(opened)
      // meanwhile a quick change commits, with a later timestamp, and a refresh sees it
      yield* sql`UPDATE shop.products SET brand = 'Acme', updated_at = now() WHERE product_id = 'x2'`
      yield* dims.refresh
      expect(dims.product("x2")?.brand).toBe("Acme")
      expect(dims.product("slow")).toBeUndefined() // not committed yet
      yield* Deferred.succeed(commit, undefined)
      yield* Fiber.join(writer)
      const [ts] = yield* sql<{ older: boolean }>`
        SELECT (SELECT updated_at FROM shop.products WHERE product_id = 'slow') < (SELECT updated_at FROM shop.products WHERE product_id = 'x2') AS older`
      expect(ts).toEqual({ older: true }) // what made the old refresh miss it
      yield* dims.refresh
      expect(dims.product("slow")).toEqual({ product_id: "slow", name: "Coat", category: null, brand: null, price: "80.00", commission_rate: null })
    }))
  })

  it("uses the change_xid index once the table is large enough", async () => {
    await Effect.runPromise(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO shop.products (product_id, name) SELECT 'bulk' || i, 'n' FROM generate_series(1, 20000) i`
      yield* sql`ANALYZE shop.products`
      const [{ snapshot }] = (yield* sql<{ snapshot: string }>`SELECT pg_current_snapshot()::text AS snapshot`) as [{ snapshot: string }]
      const plan = yield* sql.unsafe<{ "QUERY PLAN": string }>(`EXPLAIN ${Dimensions.changedRowsStatement("products", "t.product_id", snapshot)}`, [snapshot])
      expect(plan.map((r) => r["QUERY PLAN"]).join("\n")).toContain("products_change_xid_idx")
    }).pipe(Effect.provide(clientLayer(db.url))))
  })
})
