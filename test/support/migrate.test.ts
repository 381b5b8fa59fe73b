import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Effect, Layer } from "effect"
import * as Database from "../../src/sinks/Database.ts"
import { createDatabase, dropDatabase, postgresAvailable, query } from "./TestDatabase.ts"

const available = await postgresAvailable()

describe.skipIf(!available)("migrations", () => {
  let db: { url: string; name: string }
  beforeAll(async () => { db = await createDatabase() })
  afterAll(async () => { if (db) await dropDatabase(db.name) })

  it("create schema shop and are a no-op the second time", async () => {
    const migrate = Effect.runPromise(Layer.build(Database.layer(db.url)).pipe(Effect.scoped))
    await migrate
    await Effect.runPromise(Layer.build(Database.layer(db.url)).pipe(Effect.scoped))
    const tables = await query<{ table_name: string }>(db.url,
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'shop' ORDER BY 1")
    expect(tables.map((t) => t.table_name)).toEqual(expect.arrayContaining([
      "checkout_attribution", "ingest_errors", "late_events", "products", "source_positions", "users"
    ]))
  })
})
