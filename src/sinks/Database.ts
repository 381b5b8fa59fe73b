/**
 * The PostgreSQL connection pool and the schema migrations, run at start.
 *
 * Migrations are the numbered `.sql` files in `migrations/` (`0001_name.sql`), applied in
 * order by Effect's migrator, which records them and takes a lock so that two engines
 * starting at once do not race.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { PgClient, PgMigrator } from "@effect/sql-pg"
import { Cause, Effect, FileSystem, Layer, Path, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import type { Migrator } from "effect/sql"
import { isSqlError, type SqlError } from "effect/sql/SqlError"
import * as nodeFs from "node:fs"
import * as nodePath from "node:path"
import { fileURLToPath } from "node:url"

/**
 * `migrations/` at the package's root, wherever it is installed: the nearest one above this
 * module, which is in `src/sinks/`, in `dist/sinks/`, or bundled into a chunk under `dist/chunks/`.
 */
export const migrationsDir = ((): string => {
  for (let dir = import.meta.dirname; ; dir = nodePath.dirname(dir)) {
    const candidate = nodePath.join(dir, "migrations")
    if (nodeFs.existsSync(nodePath.join(dir, "package.json")) && nodeFs.existsSync(candidate)) return candidate
    if (nodePath.dirname(dir) === dir) return fileURLToPath(new URL("../../migrations", import.meta.url))
  }
})()

/**
 * The statements of a migration file. sql-pg speaks only the extended protocol, which takes
 * one statement at a time; so a migration's statements end with `;` at the end of a line,
 * and `$$`-quoted bodies (DO blocks, functions) may hold semicolons of their own.
 */
export const splitStatements = (text: string): ReadonlyArray<string> => {
  const statements: Array<string> = []
  let current: Array<string> = []
  let inDollarQuote = false
  for (const line of text.split("\n")) {
    if (current.length === 0 && /^\s*(--.*)?$/.test(line)) continue
    current.push(line)
    inDollarQuote = (line.split("$$").length - 1) % 2 === 1 ? !inDollarQuote : inDollarQuote
    if (!inDollarQuote && /;\s*(--.*)?$/.test(line)) {
      statements.push(current.join("\n"))
      current = []
    }
  }
  if (current.some((line) => !/^\s*(--.*)?$/.test(line))) statements.push(current.join("\n"))
  return statements
}

const fromSqlDir = (dir: string): Migrator.Loader<FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const migrations: Array<Migrator.ResolvedMigration> = []
    for (const file of (yield* fs.readDirectory(dir)).sort()) {
      const match = /^(\d+)_(.+)\.sql$/.exec(file)
      if (!match) continue
      const text = yield* fs.readFileString(path.join(dir, file))
      const statements = splitStatements(text)
      migrations.push([Number(match[1]), match[2]!, Effect.succeed(SqlClient.SqlClient.use((sql) =>
        Effect.forEach(statements, (statement) => sql.unsafe(statement), { discard: true })
      ))])
    }
    return migrations
  }).pipe(Effect.mapError((cause) =>
    new PgMigrator.MigrationError({ kind: "ImportError", message: `cannot read migrations in ${dir}`, cause })
  ))

/**
 * A member frozen (SIGSTOP, a VM paused) inside one of its transactions would hold its row
 * locks on `shop.task_owners` for as long as it stays frozen, and the member the group gave
 * its tasks to could not claim them. The server ends such a transaction after this long; our
 * transactions are a few statements sent back to back, so no live one is ever idle that long.
 */
export const IDLE_IN_TRANSACTION_TIMEOUT_MS = 10_000

/** A pool on `url`; small, because the engine writes from one fiber and reads dimensions from another. */
export const clientLayer = (url: string, maxConnections = 4) =>
  PgClient.layer({
    url: Redacted.make(url), maxConnections, applicationName: "insights-engine",
    startupParameters: { idle_in_transaction_session_timeout: String(IDLE_IN_TRANSACTION_TIMEOUT_MS) }
  })

/** Runs every pending migration, then provides the client. */
export const layer = (url: string, maxConnections = 4) =>
  PgMigrator.layer({ loader: fromSqlDir(migrationsDir), table: "insights_migrations" }).pipe(
    Layer.provide(NodeServices.layer),
    Layer.provideMerge(clientLayer(url, maxConnections))
  )

/**
 * `sql.withTransaction(effect)`, where a connection lost while the transaction ends is a
 * failure like any lost connection. The client turns a ROLLBACK (or a COMMIT's clean-up) that
 * fails into a defect; when the connection broke mid-transaction that is the usual case, and
 * as a defect it would skip every retry and put-back and fail the job while PostgreSQL
 * restarts. Only defects that are SQL errors are turned back; any other stays a defect.
 */
export const transaction = <A, E, R>(sql: SqlClient.SqlClient, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError, R> =>
  sql.withTransaction(effect).pipe(Effect.catchCause((cause) => {
    const defects = cause.reasons.filter(Cause.isDieReason).map((r) => r.defect)
    if (defects.length === 0 || !defects.every(isSqlError)) return Effect.failCause(cause)
    const failure = cause.reasons.find(Cause.isFailReason)
    return Effect.fail(failure === undefined ? defects[0] as SqlError : failure.error)
  }))
