/**
 * Small helpers the bench's measurements share: progress lines (stderr; stdout carries only
 * the JSON), rates, percentiles, wall-clock times comparable across processes, and the
 * protocol of the bench's child processes (ready → go → done over the IPC channel).
 */
import { type ChildProcess, fork } from "node:child_process"
import * as path from "node:path"

export const log = (line: string): void => { process.stderr.write(`bench: ${line}\n`) }

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** events per second, rounded */
export const rate = (n: number, ms: number): number => Math.round(n / (ms / 1000))

export const round3 = (x: number): number => Math.round(x * 1000) / 1000

/** Epoch ms with sub-millisecond resolution, comparable between processes of one machine. */
export const wallNow = (): number => performance.timeOrigin + performance.now()

export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN

/** The peak resident set size of this process so far, in bytes. */
export const peakRssBytes = (): number => process.resourceUsage().maxRSS * 1024

export const mib = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10

/** `global.gc` twice when the process runs with --expose-gc; false without it. */
export const forceGc = (): boolean => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) return false
  gc()
  gc()
  return true
}

/** What a bench child process tells its parent. */
export type ChildMessage =
  | { readonly type: "ready" }
  | { readonly type: "done"; readonly result: Record<string, unknown> }
  | { readonly type: "failed"; readonly error: string }

/** A bench child: `node --expose-gc dist/bench/<entry>.js` with `config` as JSON in its environment. */
export interface BenchChild {
  readonly child: ChildProcess
  readonly ready: Promise<void>
  readonly done: Promise<Record<string, unknown>>
  readonly go: (payload?: Record<string, unknown>) => void
}

export const CONFIG_ENV = "INSIGHTS_BENCH_CONFIG"

export const forkChild = (entry: string, config: unknown): BenchChild => {
  const child = fork(path.join(import.meta.dirname, entry), [], {
    execArgv: ["--expose-gc"],
    env: { ...process.env, [CONFIG_ENV]: JSON.stringify(config) },
    // the child's stdout (its log lines) joins stderr: the parent's stdout carries the JSON alone
    stdio: ["ignore", 2, "inherit", "ipc"]
  })
  let resolveReady: () => void = () => {}
  let rejectAll: (e: Error) => void = () => {}
  let resolveDone: (r: Record<string, unknown>) => void = () => {}
  const ready = new Promise<void>((resolve, reject) => { resolveReady = resolve; rejectAll = reject })
  const done = new Promise<Record<string, unknown>>((resolve, reject) => {
    resolveDone = resolve
    const previous = rejectAll
    rejectAll = (e) => { previous(e); reject(e) }
  })
  // a failure before `ready` rejects both; callers await both, so neither is left unhandled
  ready.catch(() => {})
  done.catch(() => {})
  let finished = false
  child.on("message", (m: ChildMessage) => {
    if (m.type === "ready") resolveReady()
    else if (m.type === "done") { finished = true; resolveDone(m.result) }
    else if (m.type === "failed") { finished = true; rejectAll(new Error(`${entry}: ${m.error}`)) }
  })
  child.once("exit", (code, signal) => {
    if (!finished) rejectAll(new Error(`${entry} exited (${signal ?? `code ${code}`}) before reporting`))
  })
  return { child, ready, done, go: (payload = {}) => child.send({ type: "go", ...payload }) }
}

/** A child's side: its config, and the parent's go (with what it sent). */
export const childConfig = <C>(): C => JSON.parse(process.env[CONFIG_ENV] ?? "{}") as C

export const waitForGo = (): Promise<Record<string, unknown>> =>
  new Promise((resolve) => {
    process.once("message", (m: Record<string, unknown>) => resolve(m))
    process.send!({ type: "ready" } satisfies ChildMessage)
  })

/** Runs a child's body: reports its result or its failure, then exits. */
export const runChild = (body: () => Promise<Record<string, unknown>>): void => {
  body().then(
    (result) => process.send!({ type: "done", result } satisfies ChildMessage, () => process.exit(0)),
    (e: unknown) => process.send!({ type: "failed", error: String((e as Error)?.stack ?? e) } satisfies ChildMessage, () => process.exit(1))
  )
}

/** Forks the children, waits until each is ready, lets them all go at once, and collects their results. */
export const runTogether = async (children: ReadonlyArray<BenchChild>, payload?: Record<string, unknown>): Promise<Array<Record<string, unknown>>> => {
  try {
    await Promise.all(children.map((c) => c.ready))
    for (const c of children) c.go(payload)
    return await Promise.all(children.map((c) => c.done))
  } finally {
    for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL")
  }
}
