/**
 * `Database.transaction`: a transaction that ends in an SQL error the client made a defect
 * (its ROLLBACK failing on a connection that broke) is a failure the sinks retry; any other
 * defect stays a defect.
 */
import { Cause, Effect, Exit, Fiber } from "effect"
import { SqlClient } from "effect/sql"
import { ConnectionError, SqlError } from "effect/sql/SqlError"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Database from "../../src/sinks/Database.ts"
import * as TaskOwnership from "../../src/sinks/TaskOwnership.ts"
import { createDatabase, dropDatabase, postgresAvailable } from "../support/TestDatabase.ts"

const pgOk = await postgresAvailable()

describe.skipIf(!pgOk)("Database.transaction", () => {
  let db: { url: string; name: string }
  beforeAll(async () => { db = await createDatabase("insights_tx") })
  afterAll(async () => { if (db) await dropDatabase(db.name) })

  const run = <A, E>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) =>
    Effect.runPromise(Effect.exit(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      return yield* f(sql)
    })).pipe(Effect.provide(Database.layer(db.url)), Effect.scoped))

  const lost = () => new SqlError({ reason: new ConnectionError({ cause: new Error("read ECONNRESET"), message: "PgConnection: Socket error", operation: "rollback" }) })

  it("an SQL error as a defect comes back as a failure", async () => {
    const exit = await run((sql) => Database.transaction(sql, Effect.die(lost())))
    expect(Exit.isFailure(exit) && Cause.hasDies(exit.cause)).toBe(false)
    expect(Exit.isFailure(exit) && Cause.squash(exit.cause) instanceof SqlError).toBe(true)
  })

  it("a failure inside stays the failure; another defect stays a defect; a success is a success", async () => {
    const failed = await run((sql) => Database.transaction(sql, Effect.fail("no")))
    expect(Exit.isFailure(failed) && Cause.squash(failed.cause)).toBe("no")
    const died = await run((sql) => Database.transaction(sql, Effect.die(new Error("a bug"))))
    expect(Exit.isFailure(died) && Cause.hasDies(died.cause)).toBe(true)
    const ok = await run((sql) => Database.transaction(sql, sql`SELECT 1 AS one`))
    expect(Exit.isSuccess(ok) && ok.value).toEqual([{ one: 1 }])
  })

  it("a member stalled inside its transaction (frozen, its locks on task_owners held) does not keep another from claiming the task: the server ends it", async () => {
    const frozen = Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const ownership = yield* TaskOwnership.make("kafka:tx-test", "frozen")
      const [claim] = yield* ownership.claim([7])
      // the sink's fence (row locks FOR SHARE), then nothing more is sent: as when the process is stopped
      yield* Database.transaction(sql, Effect.andThen(TaskOwnership.fenced(sql, "kafka:tx-test", [claim!]), Effect.never))
    }).pipe(Effect.provide(Database.layer(db.url)), Effect.scoped)
    const stalled = Effect.runFork(frozen)
    await new Promise((r) => setTimeout(r, 500))
    const started = Date.now()
    const exit = await run((sql) => Effect.gen(function*() {
      const other = yield* TaskOwnership.make("kafka:tx-test", "new owner")
      return yield* other.claim([7])
    }).pipe(Effect.provideService(SqlClient.SqlClient, sql)))
    const waited = Date.now() - started
    expect(Exit.isSuccess(exit) && exit.value).toEqual([{ task: 7, epoch: 2 }])
    expect(waited, "the claim waited for the stalled transaction to be ended").toBeGreaterThan(Database.IDLE_IN_TRANSACTION_TIMEOUT_MS - 2_000)
    expect(waited).toBeLessThan(Database.IDLE_IN_TRANSACTION_TIMEOUT_MS + 5_000)
    await Effect.runPromise(Fiber.interrupt(stalled))
  }, 30_000)
})
