/**
 * Scratch PostgreSQL databases for the bench, on the server at `TEST_DATABASE_ADMIN_URL`
 * (default the machine's 127.0.0.1:5432): created, migrated by the engine's own migrator
 * (`Database.layer`, as the daemon and the tests do), dropped at the end.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, ManagedRuntime, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { randomBytes } from "node:crypto"
import * as Database from "../sinks/Database.ts"
import * as LoadDimensions from "../jobs/LoadDimensions.ts"

export const adminUrl = process.env["TEST_DATABASE_ADMIN_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"

const onAdmin = (statement: string) =>
  Effect.runPromise(SqlClient.SqlClient.use((sql) => sql.unsafe(statement)).pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(adminUrl), maxConnections: 1 })), Effect.scoped))

export interface ScratchDatabase {
  readonly url: string
  readonly name: string
  readonly drop: () => Promise<void>
}

/** A new database with the engine's schema; with the dimension files loaded when given. */
export const createScratch = async (label: string, dims?: { readonly users: string; readonly products: string }): Promise<ScratchDatabase> => {
  const name = `insights_bench_${label}_${randomBytes(4).toString("hex")}`
  await onAdmin(`CREATE DATABASE ${name}`)
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  const scratch = { url: url.toString(), name, drop: () => onAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).then(() => undefined) }
  try {
    await Effect.runPromise(Effect.gen(function*() {
      if (dims === undefined) return
      yield* LoadDimensions.loadUsers(dims.users)
      yield* LoadDimensions.loadProducts(dims.products)
    }).pipe(Effect.provide(Database.layer(scratch.url, 1)), Effect.scoped))
  } catch (e) {
    await scratch.drop()
    throw e
  }
  return scratch
}

/** Rows of one query on `url`. */
export const query = <A extends object>(url: string, text: string, params: ReadonlyArray<unknown> = []): Promise<ReadonlyArray<A>> =>
  Effect.runPromise(SqlClient.SqlClient.use((sql) => sql.unsafe<A>(text, params)).pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })), Effect.scoped)) as Promise<ReadonlyArray<A>>

/** A connection kept open for polling: `query` runs on it, `close` ends it. */
export interface Poller {
  readonly query: <A extends object>(text: string, params?: ReadonlyArray<unknown>) => Promise<ReadonlyArray<A>>
  readonly close: () => Promise<void>
}

export const openPoller = (url: string): Poller => {
  const runtime = ManagedRuntime.make(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 }))
  return {
    query: <A extends object>(text: string, params: ReadonlyArray<unknown> = []) =>
      runtime.runPromise(SqlClient.SqlClient.use((sql) => sql.unsafe<A>(text, params))) as Promise<ReadonlyArray<A>>,
    close: () => runtime.dispose()
  }
}
