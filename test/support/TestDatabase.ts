/**
 * A real PostgreSQL database per test file: created on a server reachable at
 * `TEST_DATABASE_ADMIN_URL` (default the machine's 127.0.0.1:5432), dropped afterwards.
 *
 * Without a server the suite is skipped on a laptop but fails under `CI=true`:
 * CI never passes by skipping an integration test.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { randomBytes } from "node:crypto"
import * as net from "node:net"

export const adminUrl = process.env["TEST_DATABASE_ADMIN_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"
export const isCI = process.env["CI"] === "true"

const reachable = (url: string): Promise<boolean> => {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port || 5432) })
    socket.setTimeout(2_000)
    socket.once("connect", () => { socket.destroy(); resolve(true) })
    socket.once("timeout", () => { socket.destroy(); resolve(false) })
    socket.once("error", () => resolve(false))
  })
}

/** true when tests may run; throws under CI when PostgreSQL is missing. */
export const postgresAvailable = async (): Promise<boolean> => {
  const ok = await reachable(adminUrl)
  if (!ok && isCI) throw new Error(`PostgreSQL is required under CI=true but ${adminUrl} is not reachable`)
  return ok
}

const adminQuery = (statement: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(statement)
  }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(adminUrl), maxConnections: 1 })), Effect.scoped)

/** Creates a fresh database and returns its URL. */
export const createDatabase = async (prefix = "insights_test"): Promise<{ readonly url: string; readonly name: string }> => {
  const name = `${prefix}_${randomBytes(5).toString("hex")}`
  await Effect.runPromise(adminQuery(`CREATE DATABASE ${name}`))
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return { url: url.toString(), name }
}

export const dropDatabase = (name: string): Promise<void> =>
  Effect.runPromise(adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))

/** A client on `url` for assertions. */
export const clientLayer = (url: string): Layer.Layer<SqlClient.SqlClient | PgClient.PgClient, unknown> =>
  PgClient.layer({ url: Redacted.make(url), maxConnections: 2 })

/** Runs one query against `url` and returns its rows. */
export const query = <A extends object = Record<string, unknown>>(url: string, text: string, params: ReadonlyArray<unknown> = []) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      return (yield* sql.unsafe<A>(text, params)) as ReadonlyArray<A>
    }).pipe(Effect.provide(clientLayer(url)), Effect.scoped)
  )
