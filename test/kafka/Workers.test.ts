/**
 * `WORKERS=2` (issue 12): one daemon, two members of the consumer group (itself and a child
 * process). Over a backlog and a live stream it writes exactly the oracle's attribution and
 * every valid message once to the lake, the same rows as one worker; its status shows the
 * tasks of both workers and its /metrics is one valid exposition with a `worker` label; a
 * worker killed with SIGKILL is started again and the rows are still exact; SIGTERM stops
 * them all with exit 0 within 10 s.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { chromium } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { checkExposition, parseFamilies } from "../http/PromText.ts"
import { createDatabase, dropDatabase, postgresAvailable } from "../support/TestDatabase.ts"
import { kafkaBrokers, uniqueName } from "../support/Kafka.ts"
import {
  apiStatus, attribution, checkoutsOf, clicksOf, count, type Daemon, differences, distCli, generate, httpStatus, node, readTopic, sleep,
  startDaemon, waitFor, writtenAttribution, lakeMessages } from "./Harness.ts"

const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"
const brokers = await kafkaBrokers()
const pgOk = await postgresAvailable()

interface Status {
  readonly eventsTotal: number
  readonly tasks: ReadonlyArray<{ readonly id: number; readonly worker: number }>
  readonly workers: ReadonlyArray<{ readonly index: number; readonly pid: number | null; readonly alive: boolean; readonly restarts: number }>
}

describe.skipIf(brokers === undefined || !pgOk)("WORKERS=2 on a real broker", () => {
  let db: { url: string; name: string }
  const clicks = uniqueName("clicks"), checkouts = uniqueName("checkouts")
  const kafkaEnv = { KAFKA_BROKERS: brokers ?? "", CLICKS_TOPIC: clicks, CHECKOUTS_TOPIC: checkouts, KAFKA_PARTITIONS: "4" }
  const lakeDir = fs.mkdtempSync(path.join(os.tmpdir(), "workers-lake-"))
  let daemon: Daemon | undefined
  beforeAll(async () => { db = await createDatabase("insights_workers") })
  afterAll(async () => {
    if (daemon !== undefined) await daemon.stop("SIGKILL")
    if (db) await dropDatabase(db.name)
    fs.rmSync(lakeDir, { recursive: true, force: true })
  })

  it("two members in one process: exact rows, one status and one /metrics, a killed worker comes back, SIGTERM stops both", async () => {
    await generate(["--rate", "max", "--count", "3000", "--seed", "61"], kafkaEnv)
    const d = await startDaemon({
      ...kafkaEnv, WORKERS: "2", KAFKA_GROUP_ID: uniqueName("workers"), DATABASE_URL: db.url, IDLE_TIMEOUT_MS: "1500", WATERMARK_DELAY_MS: "500",
      KAFKA_SESSION_TIMEOUT_MS: "6000", LAKE_DIR: lakeDir, LAKE_FLUSH_MS: "1000"
    })
    daemon = d
    const failWith = (e: unknown): never => { throw new Error(`${(e as Error).message}\n--- daemon ---\n${d.output().slice(-3_000)}`) }
    const both = await waitFor("tasks on both workers", () => apiStatus<Status>(d), (s) =>
      s !== undefined && new Set(s.tasks.map((t) => t.worker)).size === 2 && s.tasks.length === 4, 60_000).catch(failWith)
    expect(both!.workers.map((w) => w.index)).toEqual([0, 1])
    // a worker's counters appear in its report once it has read something
    const workersOf = (text: string) => new Set(parseFamilies(text).find((f) => f.name === "insights_events_in_total")?.metrics
      .map((m) => (m as { labels?: Record<string, string> }).labels?.["worker"]))
    const text = await waitFor("both workers' events in /metrics", async () => (await fetch(`http://127.0.0.1:${d.port}/metrics`)).text(),
      (t) => workersOf(t).size === 2, 30_000).catch(failWith)
    checkExposition(text) // the project's own strict reading: every family once, types and samples agree
    const families = parseFamilies(text)
    expect(workersOf(text)).toEqual(new Set(["0", "1"]))
    expect(new Set(families.map((f) => f.name)).size, "every family once").toBe(families.length)

    // the status page lists both members, with the tasks each runs
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic"] })
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
      await page.goto(`http://127.0.0.1:${d.port}/`)
      await page.locator("#workers tr").nth(1).waitFor({ timeout: 15_000 })
      const rows = await page.$$eval("#workers tr", (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent ?? "")))
      expect(rows.map((r) => r[0])).toEqual(["0 (primary)", "1"])
      const tasksShown = rows.flatMap((r) => r[4]!.split(", ").map(Number)).sort()
      expect(tasksShown, "every task once, on its worker").toEqual([0, 1, 2, 3])
      expect(rows.every((r) => r[2] === "running")).toBe(true)
      fs.mkdirSync("test-artifacts", { recursive: true })
      await page.locator("#workers-section").screenshot({ path: "test-artifacts/status-workers.png" })
    } finally {
      await browser.close()
    }

    const producing = spawn(node, [distCli, "generate", "--to", "kafka", "--rate", "1500", "--duration", "6", "--seed", "62"], { env: { ...process.env, ...kafkaEnv }, stdio: "ignore" })
    const produced = new Promise((resolve) => producing.once("exit", resolve))
    await sleep(2_000)
    const pid = both!.workers.find((w) => w.index === 1)!.pid!
    process.kill(pid, "SIGKILL")
    await waitFor("the killed worker started again", () => apiStatus<Status>(d), (s) =>
      s !== undefined && s.workers.some((w) => w.index === 1 && w.alive && w.restarts === 1 && w.pid !== pid), 30_000).catch(failWith)
    await produced

    const cs = clicksOf(await readTopic(brokers!, clicks)), ks = checkoutsOf(await readTopic(brokers!, checkouts))
    await waitFor("every checkout written", () => count(db.url, "shop.checkout_attribution"), (n) => n >= ks.length, 90_000).catch(failWith)
    await waitFor("ready", () => httpStatus(d.port, "/readyz"), (s) => s === 200, 30_000).catch(failWith)
    expect(differences(attribution(cs, ks), await writtenAttribution(db.url))).toEqual([])
    const stop = await d.stop("SIGTERM")
    expect(stop.code).toBe(0)
    expect(stop.ms).toBeLessThan(10_000)
    await sleep(500)
    for (const [topic, valid] of [[clicks, cs.length], [checkouts, ks.length]] as const) {
      expect(await lakeMessages(lakeDir, topic), `raw/${topic}`).toEqual({ n: String(valid), distinct_messages: String(valid) })
    }
  }, 180_000)
})
