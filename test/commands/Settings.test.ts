/**
 * A refused setting stops `node dist/main.js` and `node dist/cli.js <command>` before they
 * touch anything: exit code 2 and one line on stderr naming the setting, no stack trace.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildOnce } from "../http/Daemon.ts"

const root = path.resolve(import.meta.dirname, "../..")
const node = path.join(root, "node_modules/.bin/node")

interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs a built entry point with `env` on top of a neutral environment (nothing reachable, no broker). */
const run = (args: ReadonlyArray<string>, env: Record<string, string>): Promise<Ran> => {
  const { KAFKA_BROKERS: _k, DATABASE_URL: _d, ...inherited } = process.env
  return new Promise((resolve) => {
    execFile(node, [...args], {
      cwd: root,
      timeout: 30_000,
      // were a bad value let through, nothing would be started: no server on port 1, no embedded one
      env: { ...inherited, DATABASE_URL: "postgres://postgres@127.0.0.1:1/none", HTTP_PORT: "1", ...env }
    }, (error, stdout, stderr) => resolve({ code: error ? (error as { code?: number }).code ?? null : 0, stdout, stderr }))
  })
}

describe("bad settings", () => {
  let dir: string
  let clicks: string
  beforeAll(() => {
    buildOnce()
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "settings-"))
    clicks = path.join(dir, "clicks.txt")
    fs.writeFileSync(clicks, "")
  })
  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  const cases: Array<[string, Record<string, string>, string]> = [
    ["KAFKA_PARTITIONS=0", { KAFKA_PARTITIONS: "0" }, `KAFKA_PARTITIONS must be an integer ≥ 1 (got "0")`],
    ["IDLE_TIMEOUT_MS=0", { IDLE_TIMEOUT_MS: "0" }, `IDLE_TIMEOUT_MS must be an integer ≥ 1 (got "0")`],
    ["SINK_FLUSH_ROWS=many", { SINK_FLUSH_ROWS: "many" }, `SINK_FLUSH_ROWS must be an integer ≥ 1 (got "many")`],
    ["HTTP_PORT=70000", { HTTP_PORT: "70000" }, `HTTP_PORT must be an integer between 1 and 65535 (got "70000")`],
    ["GENERATOR_RATE=-1", { GENERATOR_RATE: "-1" }, `GENERATOR_RATE must be a finite number > 0 (got "-1")`]
  ]

  for (const [label, env, line] of cases) {
    it(`node dist/main.js with ${label}: exit 2, one line`, async () => {
      const r = await run([path.join(root, "dist/main.js")], env)
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: `insights-engine: ${line}\n` })
    })
  }

  it("node dist/cli.js replay with a bad value: exit 2, one line", async () => {
    for (const [, env, line] of cases.slice(0, 3)) {
      const r = await run([path.join(root, "dist/cli.js"), "replay", "--clicks", clicks], env)
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: `insights: ${line}\n` })
    }
  })

  it("node dist/cli.js run and load-dims check the settings too", async () => {
    const run1 = await run([path.join(root, "dist/cli.js"), "run"], { IDLE_TIMEOUT_MS: "0" })
    expect({ code: run1.code, stderr: run1.stderr }).toEqual({ code: 2, stderr: `insights: IDLE_TIMEOUT_MS must be an integer ≥ 1 (got "0")\n` })
    const load = await run([path.join(root, "dist/cli.js"), "load-dims", "--users", clicks], { MAX_FUTURE_MS: "soon" })
    expect({ code: load.code, stderr: load.stderr }).toEqual({ code: 2, stderr: `insights: MAX_FUTURE_MS must be an integer ≥ 0 (got "soon")\n` })
  })
})
