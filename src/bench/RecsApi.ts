/**
 * The recommendations API at load (issue 11: p99 under 5 ms while the daemon runs at load):
 * `node dist/main.js` on a scratch database with the in-process generator at `rate`
 * messages/s, then `requests` GETs one after another for the generator's users, each timed
 * from the request to the last byte of the answer (loopback HTTP included).
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { makeUsers } from "../generator/Catalog.ts"
import { defaultData } from "../generator/writeData.ts"
import { freePort } from "../http/FreePort.ts"
import { percentile, sleep } from "./Common.ts"

export interface RecsApiMeasurement {
  readonly requests: number
  readonly p50_ms: number
  readonly p99_ms: number
  readonly max_ms: number
  readonly personalized_share: number
  /** events the daemon processed per second while it answered */
  readonly daemon_events_per_s: number
  readonly generator_rate: number
}

export const measureRecsApi = async (databaseUrl: string, options: { readonly rate: number; readonly requests: number }): Promise<RecsApiMeasurement> => {
  const port = await freePort()
  const lakeDir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-recs-lake-"))
  const main = path.join(import.meta.dirname, "..", "main.js")
  const { KAFKA_BROKERS: _k, ...env } = process.env
  const child: ChildProcess = spawn(process.execPath, [main], {
    env: { ...env, DATABASE_URL: databaseUrl, HTTP_PORT: String(port), GENERATOR_RATE: String(options.rate), GENERATOR_SEED: "3", LAKE_DIR: lakeDir },
    stdio: ["ignore", "ignore", "pipe"]
  })
  let stderr = ""
  child.stderr!.on("data", (d) => { stderr += d })
  const base = `http://127.0.0.1:${port}`
  const status = async () => (await (await fetch(`${base}/api/status`)).json()) as {
    readonly recommendations: { readonly users: number } | null
    readonly eventsTotal: number
  }
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`the daemon exited: ${stderr.slice(-2_000)}`)
      const users = await status().then((s) => s.recommendations?.users ?? 0).catch(() => 0)
      if (users >= 500) break
      if (i > 300) throw new Error(`no recommendations after 60 s: ${stderr.slice(-2_000)}`)
      await sleep(200)
    }
    await sleep(2_000) // at load, not at start
    // one kept-alive connection, as a service calling the API would have (no connection set-up per request)
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    const get = (urlPath: string) =>
      new Promise<string>((resolve, reject) => {
        http.get({ host: "127.0.0.1", port, path: urlPath, agent }, (res) => {
          let data = ""
          res.setEncoding("utf8")
          res.on("data", (d: string) => { data += d })
          res.on("end", () => resolve(data))
        }).on("error", reject)
      })
    const ids = makeUsers(defaultData.userSeed, defaultData.userCount).map((u) => u.user_id)
    const times: Array<number> = []
    let personalized = 0
    const before = { events: (await status()).eventsTotal, at: performance.now() }
    for (let i = 0; i < options.requests; i++) {
      const user = ids[(i * 7919) % ids.length]!
      const started = performance.now()
      const text = await get(`/api/users/${encodeURIComponent(user)}/recommendations`)
      times.push(performance.now() - started)
      const body = JSON.parse(text) as { readonly personalized?: boolean }
      if (body.personalized === true) personalized++
    }
    const throughput = ((await status()).eventsTotal - before.events) / ((performance.now() - before.at) / 1000)
    const sorted = [...times].sort((a, b) => a - b)
    const round = (x: number) => Math.round(x * 1000) / 1000
    return {
      requests: times.length,
      p50_ms: round(percentile(sorted, 0.5)),
      p99_ms: round(percentile(sorted, 0.99)),
      max_ms: round(sorted[sorted.length - 1] ?? 0),
      personalized_share: round(personalized / Math.max(1, times.length)),
      daemon_events_per_s: Math.round(throughput),
      generator_rate: options.rate
    }
  } finally {
    child.kill("SIGTERM")
    await new Promise((r) => child.once("exit", r))
    fs.rmSync(lakeDir, { recursive: true, force: true })
  }
}
