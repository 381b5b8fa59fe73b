/**
 * The embedded PostgreSQL (src/sinks/EmbeddedPostgres.ts) on this machine's binaries: it
 * starts, creates its database and stops; and, as root in a private folder (mode 0700, which
 * the OS user postgres cannot enter), it runs a copy of the binaries and moves the default
 * data folder, or refuses an unreachable EMBEDDED_PG_DIR with one line. The root cases are
 * skipped when the tests do not run as root.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Exit, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { execFile } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as EmbeddedPostgres from "../../src/sinks/EmbeddedPostgres.ts"
import { buildOnce, freePort } from "../http/Daemon.ts"

const isRoot = process.getuid?.() === 0
const root = path.resolve(import.meta.dirname, "../..")

const listening = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port })
    s.once("connect", () => { s.destroy(); resolve(true) })
    s.once("error", () => resolve(false))
  })

/** Starts the server with `options`, runs one query on the URL it yields, stops it. */
const startAndQuery = (options: EmbeddedPostgres.StartOptions) =>
  Effect.runPromiseExit(Effect.scoped(Effect.gen(function*() {
    const url = yield* EmbeddedPostgres.start(options)
    const rows = yield* Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      return yield* sql<{ db: string; who: string }>`SELECT current_database() AS db, current_user AS who`
    }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })), Effect.scoped)
    return { url, rows }
  })))

const failure = (exit: Exit.Exit<unknown, unknown>): string => {
  expect(Exit.isFailure(exit)).toBe(true)
  const error = Exit.isFailure(exit) ? Exit.findErrorOption(exit) : undefined
  const e = error && error._tag === "Some" ? error.value : undefined
  expect(e).toBeInstanceOf(EmbeddedPostgres.EmbeddedPostgresError)
  const message = (e as Error).message
  expect(message).not.toContain("\n")
  return message
}

describe("embedded PostgreSQL", () => {
  let binaries: EmbeddedPostgres.Binaries
  const cleanup: Array<string> = []
  const tempDir = (prefix: string, mode: number) => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
    fs.chmodSync(d, mode)
    cleanup.push(d)
    return d
  }
  beforeAll(async () => {
    binaries = await EmbeddedPostgres.findBinaries()
  })
  afterAll(() => {
    for (const d of cleanup) fs.rmSync(d, { recursive: true, force: true })
  })

  it("starts, creates its database, stops; a second start reuses the data", async () => {
    const dir = tempDir("embedded-pg-", 0o755)
    const port = await freePort()
    const options = { dataDir: path.join(dir, "data"), port, binaries }
    const first = await startAndQuery(options)
    expect(Exit.isSuccess(first) && first.value.rows).toEqual([{ db: "insights", who: "postgres" }])
    expect(await listening(port)).toBe(false)
    expect(fs.existsSync(path.join(dir, "data", "PG_VERSION"))).toBe(true)
    expect(fs.readdirSync(dir).filter((f) => f.includes("pwfile"))).toEqual([]) // the password file is gone
    const second = await startAndQuery(options)
    expect(Exit.isSuccess(second)).toBe(true)
  })

  it("a data folder initdb refuses is one line", async () => {
    const dir = tempDir("embedded-pg-", 0o755)
    fs.mkdirSync(path.join(dir, "data"))
    fs.writeFileSync(path.join(dir, "data", "stray.txt"), "not a cluster")
    const message = failure(await startAndQuery({ dataDir: path.join(dir, "data"), port: await freePort(), binaries }))
    expect(message).toMatch(/^initdb failed for .*data \(.*initdb: exit code 1: .+\): set DATABASE_URL/)
  })

  describe.skipIf(!isRoot)("as root in a private folder", () => {
    let privateDir: string
    let nativeCopy: EmbeddedPostgres.Binaries
    let postgresUid: number
    beforeAll(async () => {
      postgresUid = (await EmbeddedPostgres.postgresUser()).uid
      // a clone under /root/x: the package's binaries inside a folder of mode 0700
      privateDir = tempDir("private-", 0o700)
      fs.cpSync(binaries.nativeDir, path.join(privateDir, "native"), { recursive: true, verbatimSymlinks: true })
      nativeCopy = { nativeDir: path.join(privateDir, "native"), version: "test" }
    })

    it("runs a copy of the binaries and moves the default data folder where the OS user postgres can reach it", async () => {
      const shared = tempDir("shared-", 0o755)
      const cacheRoot = path.join(shared, "cache")
      const relocationRoot = path.join(shared, "lib")
      const configured = path.join(privateDir, ".data", "postgres")
      const port = await freePort()
      const exit = await startAndQuery({
        dataDir: configured, dataDirIsDefault: true, port, binaries: nativeCopy, cacheRoots: [cacheRoot], relocationRoot
      })
      expect(Exit.isSuccess(exit) && exit.value.rows).toEqual([{ db: "insights", who: "postgres" }])
      const copy = path.join(cacheRoot, `embedded-postgres-test-${process.platform}-${process.arch}`)
      expect(fs.existsSync(path.join(copy, ".complete"))).toBe(true)
      expect(fs.statSync(copy).mode & 0o777).toBe(0o755)
      const moved = path.join(relocationRoot, `postgres-${createHash("sha256").update(configured).digest("hex").slice(0, 12)}`)
      expect(fs.existsSync(path.join(moved, "PG_VERSION"))).toBe(true)
      expect(fs.statSync(moved).uid).toBe(postgresUid)
      expect(fs.existsSync(configured)).toBe(false) // nothing made in the private folder
      expect(await listening(port)).toBe(false)
      // again: the copy and the moved data are reused
      const again = await startAndQuery({
        dataDir: configured, dataDirIsDefault: true, port, binaries: nativeCopy, cacheRoots: [cacheRoot], relocationRoot
      })
      expect(Exit.isSuccess(again)).toBe(true)
    })

    it("refuses an EMBEDDED_PG_DIR the OS user postgres cannot reach, in one line", async () => {
      const message = failure(await startAndQuery({
        dataDir: path.join(privateDir, "pgdata"), port: await freePort(), binaries, relocationRoot: path.join(privateDir, "never")
      }))
      expect(message).toMatch(/^EMBEDDED_PG_DIR .*pgdata is out of reach of the OS user postgres.*set EMBEDDED_PG_DIR to a folder it can reach.*DATABASE_URL/)
      expect(fs.existsSync(path.join(privateDir, "pgdata"))).toBe(false)
    })

    it("says what to do when no copy of the binaries can be reached either", async () => {
      const unreachableCache = path.join(privateDir, "cache") // root's, 0755, but inside the private folder
      const message = failure(await startAndQuery({
        dataDir: path.join(tempDir("shared-", 0o755), "data"), port: await freePort(), binaries: nativeCopy, cacheRoots: [unreachableCache]
      }))
      expect(message).toMatch(/^the OS user postgres cannot run the embedded PostgreSQL binaries \(.*initdb: EACCES\): set DATABASE_URL/)
    })

    it("node dist/main.js: an unreachable EMBEDDED_PG_DIR is one line on stderr and exit code 1", async () => {
      buildOnce()
      const { KAFKA_BROKERS: _k, DATABASE_URL: _d, ...env } = process.env
      const port = await freePort()
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
        execFile(path.join(root, "node_modules/.bin/node"), [path.join(root, "dist/main.js")], {
          cwd: root, timeout: 60_000,
          env: { ...env, EMBEDDED_PG_DIR: path.join(privateDir, "daemon-data"), EMBEDDED_PG_PORT: String(port), HTTP_PORT: "1" }
        }, (error, _stdout, stderr) => resolve({ code: error ? (error as { code?: number }).code ?? null : 0, stderr })))
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/^insights-engine: EMBEDDED_PG_DIR .*daemon-data is out of reach of the OS user postgres[^\n]*\n$/)
    })
  })
})
