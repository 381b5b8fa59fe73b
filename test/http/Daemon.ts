/**
 * The daemon as a child process for end-to-end tests: `node dist/main.js` (built from the
 * current sources once per test run) with a test database, a free HTTP port and a fast
 * generator; helpers to wait for it, fetch from it and stop it.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { freePort } from "../../src/http/FreePort.ts"

export { freePort }

const root = path.resolve(import.meta.dirname, "../..")
const node = path.join(root, "node_modules/.bin/node")

let built = false
/** `npm run build` once per process: the tests run what the sources say now. */
export const buildOnce = (): void => {
  if (built) return
  try {
    execFileSync("npm", ["run", "build"], { cwd: root, stdio: "pipe" })
  } catch (e) {
    // tsc emits even with type errors elsewhere in the tree; the daemon tests judge the result
    const out = e as { stdout?: Buffer; stderr?: Buffer }
    process.stderr.write(`npm run build reported errors:\n${out.stdout?.toString() ?? ""}${out.stderr?.toString() ?? ""}\n`)
  }
  if (!fs.existsSync(path.join(root, "dist/main.js"))) throw new Error("dist/main.js missing after npm run build")
  built = true
}


export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Polls `probe` until it returns something other than `undefined`, or fails after `timeoutMs`. */
export const waitFor = async <A>(what: string, probe: () => Promise<A | undefined>, timeoutMs = 30_000, everyMs = 200): Promise<A> => {
  const deadline = performance.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const a = await probe()
      if (a !== undefined) return a
    } catch (e) {
      last = e
    }
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`)
    await sleep(everyMs)
  }
}

export interface Daemon {
  readonly baseUrl: string
  readonly child: ChildProcess
  /** everything it wrote to stdout and stderr so far */
  readonly output: () => string
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  /** GET `path` with a timeout; never throws on HTTP status */
  readonly get: (path: string, timeoutMs?: number) => Promise<Response>
  /** SIGKILL if still running */
  readonly kill: () => Promise<void>
}

export const startDaemon = async (env: Record<string, string>): Promise<Daemon> => {
  buildOnce()
  const port = Number(env["HTTP_PORT"] ?? await freePort())
  // the in-process generator is the source: no broker the test run happens to know about (test/globalSetup.ts sets KAFKA_BROKERS)
  const { KAFKA_BROKERS: _kafka, ...inherited } = process.env
  const child = spawn(node, [path.join(root, "dist/main.js")], {
    cwd: root,
    env: { ...inherited, GENERATOR_RATE: "200", WATERMARK_DELAY_MS: "1000", IDLE_TIMEOUT_MS: "2000", ...env, HTTP_PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  child.stdout!.on("data", (d: Buffer) => { output += d.toString() })
  child.stderr!.on("data", (d: Buffer) => { output += d.toString() })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })))
  const baseUrl = `http://127.0.0.1:${port}`
  const daemon: Daemon = {
    baseUrl,
    child,
    output: () => output,
    exited,
    get: (p, timeoutMs = 5_000) => fetch(baseUrl + p, { signal: AbortSignal.timeout(timeoutMs) }),
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL")
        await exited
      }
    }
  }
  const deadline = performance.now() + 60_000
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the daemon exited during start-up:\n${output}`)
    const res = await daemon.get("/readyz", 3_000).catch(() => undefined)
    if (res?.status === 200) return daemon
    if (performance.now() > deadline) {
      await daemon.kill()
      throw new Error(`the daemon's /readyz did not answer 200 within 60 s\n--- daemon output ---\n${output}`)
    }
    await sleep(200)
  }
}
