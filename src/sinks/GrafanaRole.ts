/**
 * The password of the read-only `grafana` role (created by `migrations/0003_grafana_role.sql`).
 *
 * The engine calls `setGrafanaPassword` at start with `GRAFANA_DB_PASSWORD` (default
 * `grafana`), the same value Grafana's provisioned datasource is given.
 *
 * `ALTER ROLE ... PASSWORD` takes no bind parameters, so the value is written into the
 * statement. To keep the password itself out of the statement (server logs, tracing spans,
 * error messages), an ASCII password is sent as a SCRAM-SHA-256 verifier computed here, as
 * `psql`'s `\password` does; PostgreSQL stores a verifier as it is. Any other password is sent
 * as an escaped literal, for the server to normalise (SASLprep) and hash itself.
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto"

/** The role Grafana logs in as. */
export const grafanaRole = "grafana"

/** PostgreSQL's own default number of iterations (`scram_iterations`). */
const scramIterations = 4096

/** A string literal for PostgreSQL with standard_conforming_strings on (the default since 9.1). */
export const quoteLiteral = (value: string): string => {
  if (value.includes("\u0000")) throw new Error("a PostgreSQL string cannot contain NUL")
  return `'${value.replaceAll("'", "''")}'`
}

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for `password`:
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (RFC 5802 / RFC 7677).
 */
export const scramSha256Verifier = (
  password: string,
  salt: Uint8Array = randomBytes(16),
  iterations: number = scramIterations
): string => {
  const salted = pbkdf2Sync(Buffer.from(password, "utf8"), salt, iterations, 32, "sha256")
  const clientKey = createHmac("sha256", salted).update("Client Key").digest()
  const storedKey = createHash("sha256").update(clientKey).digest()
  const serverKey = createHmac("sha256", salted).update("Server Key").digest()
  const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64")
  return `SCRAM-SHA-256$${iterations}:${b64(salt)}$${b64(storedKey)}:${b64(serverKey)}`
}

/** Printable ASCII, where SASLprep is the identity, so a client-side verifier is exact. */
const isPrintableAscii = (value: string) => /^[\x20-\x7e]*$/.test(value)

/** The `ALTER ROLE` statement that gives `grafana` this password. */
export const alterPasswordStatement = (password: string): string =>
  `ALTER ROLE ${grafanaRole} PASSWORD ${
    quoteLiteral(isPrintableAscii(password) && password !== "" ? scramSha256Verifier(password) : password)
  }`

/** Sets the password of the `grafana` role. */
export const setGrafanaPassword = (password: string): Effect.Effect<void, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(alterPasswordStatement(password))
  }).pipe(Effect.withSpan("GrafanaRole.setGrafanaPassword"))
