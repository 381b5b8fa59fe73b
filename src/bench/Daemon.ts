/**
 * `node dist/main.js` as the bench runs it: on a scratch database, reading the bench's topics
 * as a group of its own, WORKERS left to its default (one member per core), HTTP on a free
 * port. Its output is kept for failure messages, not shown.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import { freePort } from "../http/FreePort.ts"
import { wallNow } from "./Common.ts"

export interface BenchDaemon {
  readonly port: number
  readonly child: ChildProcess
  /** wall-clock ms just before the process was spawned */
  readonly spawnedAt: number
  readonly output: () => string
  readonly stop: () => Promise<number | null>
  /** events counted by the whole process (`/api/status`), or undefined while it does not answer */
  readonly eventsTotal: () => Promise<number | undefined>
}

export const startDaemon = async (env: Record<string, string>): Promise<BenchDaemon> => {
  const port = await freePort()
  const { WORKERS: _w, KAFKA_BROKERS: _k, ...inherited } = process.env
  const spawnedAt = wallNow()
  const child = spawn(process.execPath, [path.join(import.meta.dirname, "..", "main.js")], {
    env: { ...inherited, HTTP_PORT: String(port), ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  const keep = (d: Buffer) => { output = (output + d.toString()).slice(-20_000) }
  child.stdout!.on("data", keep)
  child.stderr!.on("data", keep)
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  return {
    port,
    child,
    spawnedAt,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000)
      const code = await exited
      clearTimeout(timer)
      return code
    },
    eventsTotal: async () => {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/api/status`, { signal: AbortSignal.timeout(2_000) })
        if (r.status !== 200) return undefined
        return ((await r.json()) as { readonly eventsTotal: number }).eventsTotal
      } catch {
        return undefined
      }
    }
  }
}
