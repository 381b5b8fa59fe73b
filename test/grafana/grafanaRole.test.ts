/**
 * The `grafana` role: the migration is idempotent across databases of one server, and the
 * engine's `setGrafanaPassword` stores a SCRAM-SHA-256 verifier that authenticates the password.
 */
import { Effect, Layer } from "effect"
import { createHash, createHmac } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Database from "../../src/sinks/Database.ts"
import { alterPasswordStatement, quoteLiteral, scramSha256Verifier, setGrafanaPassword } from "../../src/sinks/GrafanaRole.ts"
import { clientLayer, createDatabase, dropDatabase, postgresAvailable, query } from "../support/TestDatabase.ts"

const available = await postgresAvailable()

const hmac = (key: Uint8Array, text: string) => createHmac("sha256", key).update(text).digest()

/** What a PostgreSQL server checks at login: the client's proof against the stored verifier. */
const verifies = (verifier: string, password: string) => {
  const match = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(verifier)
  if (!match) return false
  const [, iterations, salt, storedKey, serverKey] = match
  const fresh = scramSha256Verifier(password, Buffer.from(salt!, "base64"), Number(iterations))
  return fresh === `SCRAM-SHA-256$${iterations}:${salt}$${storedKey}:${serverKey}`
}

describe("SCRAM-SHA-256 verifier", () => {
  it("matches the RFC 7677 example exchange (user, pencil)", () => {
    const salt = Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64")
    const verifier = scramSha256Verifier("pencil", salt, 4096)
    const [, keys] = verifier.split(`$4096:${salt.toString("base64")}$`)
    const [storedKey, serverKey] = keys!.split(":").map((k) => Buffer.from(k, "base64")) as [Buffer, Buffer]
    const authMessage = "n=user,r=rOprNGfwEbeRWgbNEkqO,"
      + "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
      + "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    // the server's signature in the RFC is HMAC(ServerKey, AuthMessage)
    expect(hmac(serverKey, authMessage).toString("base64")).toBe("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    // and the client's proof, XOR HMAC(StoredKey, AuthMessage), gives a ClientKey hashing to StoredKey
    const proof = Buffer.from("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "base64")
    const signature = hmac(storedKey, authMessage)
    const clientKey = Buffer.from(proof.map((byte, i) => byte ^ signature[i]!))
    expect(createHash("sha256").update(clientKey).digest().equals(storedKey)).toBe(true)
  })

  it("keeps the password out of the statement, and escapes what it must send", () => {
    const statement = alterPasswordStatement("pa'ss word")
    expect(statement).toMatch(/^ALTER ROLE grafana PASSWORD 'SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+'$/)
    expect(statement).not.toContain("pa'ss")
    expect(alterPasswordStatement("pässwörd")).toBe("ALTER ROLE grafana PASSWORD 'pässwörd'")
    expect(quoteLiteral("it's")).toBe("'it''s'")
    expect(() => quoteLiteral("a\u0000b")).toThrow()
  })
})

describe.skipIf(!available)("grafana role in PostgreSQL", () => {
  const dbs: Array<{ url: string; name: string }> = []
  beforeAll(async () => {
    dbs.push(await createDatabase("insights_grafana_role"), await createDatabase("insights_grafana_role"))
  })
  afterAll(async () => {
    // leave the cluster-wide role with the documented default password
    if (dbs[0]) await Effect.runPromise(setGrafanaPassword("grafana").pipe(Effect.provide(clientLayer(dbs[0].url))))
    for (const db of dbs) await dropDatabase(db.name)
  })

  it("migrates two databases on one server, twice, and grants in each", async () => {
    for (const db of [...dbs, ...dbs]) await Effect.runPromise(Layer.build(Database.layer(db.url)).pipe(Effect.scoped))
    for (const db of dbs) {
      const [row] = await query<{ connect: boolean; usage: boolean; select: boolean }>(
        db.url,
        `SELECT has_database_privilege('grafana', current_database(), 'CONNECT') AS connect,
                has_schema_privilege('grafana', 'shop', 'USAGE') AS usage,
                has_table_privilege('grafana', 'shop.engine_status', 'SELECT') AS select`
      )
      expect(row).toEqual({ connect: true, usage: true, select: true })
    }
    const [role] = await query<{ rolcanlogin: boolean; rolsuper: boolean; settings: ReadonlyArray<string> }>(
      dbs[0]!.url,
      `SELECT r.rolcanlogin, r.rolsuper, s.setconfig AS settings
       FROM pg_roles r JOIN pg_db_role_setting s ON s.setrole = r.oid AND s.setdatabase = 0
       WHERE r.rolname = 'grafana'`
    )
    expect(role).toMatchObject({ rolcanlogin: true, rolsuper: false })
    expect(role!.settings).toEqual(expect.arrayContaining(["default_transaction_read_only=on", "search_path=shop, public"]))
  })

  it("migrates as an owner that may not alter the role: grants, and leaves the role's settings alone", async () => {
    const admin = dbs[0]!.url
    const app = `insights_app_${Math.random().toString(36).slice(2, 10)}`
    const db = await createDatabase("insights_grafana_role")
    try {
      await query(admin, `CREATE ROLE ${app} LOGIN`)
      await query(admin, `ALTER DATABASE ${db.name} OWNER TO ${app}`)
      await query(admin, "ALTER ROLE grafana RESET statement_timeout")
      const asApp = new URL(db.url)
      asApp.username = app
      await Effect.runPromise(Layer.build(Database.layer(asApp.toString())).pipe(Effect.scoped))
      const [row] = await query<{ select: boolean }>(db.url, "SELECT has_table_privilege('grafana', 'shop.engine_status', 'SELECT') AS select")
      expect(row).toEqual({ select: true })
      const [settings] = await query<{ setconfig: ReadonlyArray<string> }>(
        admin,
        "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = 'grafana' AND s.setdatabase = 0"
      )
      expect(settings!.setconfig.some((c) => c.startsWith("statement_timeout="))).toBe(false)
    } finally {
      await query(admin, "ALTER ROLE grafana SET statement_timeout = '30s'")
      await dropDatabase(db.name)
      await query(admin, `DROP ROLE IF EXISTS ${app}`)
    }
  })

  it("setGrafanaPassword stores a verifier of the password (SCRAM), or lets the server hash it", async () => {
    const url = dbs[0]!.url
    const storedPassword = async () =>
      (await query<{ rolpassword: string }>(url, "SELECT rolpassword FROM pg_authid WHERE rolname = 'grafana'"))[0]!.rolpassword
    await Effect.runPromise(setGrafanaPassword("s3cr'et pass").pipe(Effect.provide(clientLayer(url))))
    const verifier = await storedPassword()
    expect(verifier).toMatch(/^SCRAM-SHA-256\$4096:/)
    expect(verifies(verifier, "s3cr'et pass")).toBe(true)
    expect(verifies(verifier, "wrong")).toBe(false)
    await Effect.runPromise(setGrafanaPassword("pässwörd").pipe(Effect.provide(clientLayer(url))))
    expect(await storedPassword()).toMatch(/^(SCRAM-SHA-256|md5)/)
  })
})
