/**
 * SPEC §5: after a crash at any moment (kill -9) or a clean stop, and a restart, the tables
 * end up exactly as after an uninterrupted run over the same input. The input is produced
 * live while the daemon runs, the daemon is killed and stopped mid-stream, and the result is
 * compared with an uninterrupted run (another group, another database) over the same topics,
 * and with the oracle.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createDatabase, dropDatabase, postgresAvailable, query } from "../support/TestDatabase.ts"
import { kafkaBrokers, produce, uniqueName } from "../support/Kafka.ts"
import {
  attribution, checkoutsOf, clicksOf, count, type Daemon, differences, distCli, generate, httpStatus, node, readTopic, sleep, startDaemon,
  waitFor, writtenAttribution, lakeMessages } from "./Harness.ts"

const brokers = await kafkaBrokers()
const pgOk = await postgresAvailable()

const tables = async (url: string) => ({
  attribution: await query(url, "SELECT * FROM shop.checkout_attribution ORDER BY checkout_id").then((rows) =>
    rows.map(({ written_at: _w, ...rest }) => rest)),
  late: await query(url, "SELECT topic, event_id FROM shop.late_events ORDER BY topic, event_id"),
  errors: await query(url, `SELECT source, "partition", "offset", payload, error FROM shop.ingest_errors ORDER BY source, "partition", "offset"`)
})


describe.skipIf(brokers === undefined || !pgOk)("restarts on Kafka", () => {
  const dbs: Array<{ url: string; name: string }> = []
  const clicks = uniqueName("clicks"), checkouts = uniqueName("checkouts")
  const kafkaEnv = { KAFKA_BROKERS: brokers ?? "", CLICKS_TOPIC: clicks, CHECKOUTS_TOPIC: checkouts, KAFKA_PARTITIONS: "3" }
  // a short W so rows are written while the input still flows
  // and a lake that writes a file every second, so the kills fall between (and during) flushes
  const lakeDir = fs.mkdtempSync(path.join(os.tmpdir(), "restart-lake-"))
  const engineEnv = (db: { url: string }, group: string) => ({ ...kafkaEnv, KAFKA_GROUP_ID: group, DATABASE_URL: db.url, IDLE_TIMEOUT_MS: "1500", WATERMARK_DELAY_MS: "500",
    KAFKA_SESSION_TIMEOUT_MS: "6000", LAKE_DIR: lakeDir, LAKE_FLUSH_MS: "1000" })
  const running: Array<Daemon> = []

  beforeAll(async () => {
    dbs.push(await createDatabase("insights_restart"), await createDatabase("insights_plain"))
  })
  afterAll(async () => {
    for (const d of running) await d.stop("SIGKILL")
    for (const db of dbs) await dropDatabase(db.name)
    fs.rmSync(lakeDir, { recursive: true, force: true })
  })

  const settle = async (url: string, checkoutCount: number, errors: number, daemon: Daemon) => {
    await waitFor("all rows", () => Promise.all([count(url, "shop.checkout_attribution"), count(url, "shop.ingest_errors")]),
      ([rows, errs]) => rows >= checkoutCount && errs >= errors, 45_000)
      .catch((e) => { throw new Error(`${(e as Error).message}\n--- daemon ---\n${daemon.output().slice(-3_000)}`) })
    await sleep(1_000)
  }

  it("kill -9 and SIGTERM mid-stream, restarted: the same tables as an uninterrupted run, and the oracle's attribution", async () => {
    const [crashed, plain] = [dbs[0]!, dbs[1]!]
    await generate(["--rate", "max", "--count", "2000", "--seed", "5"], kafkaEnv) // creates the topics
    await produce(brokers!, clicks, [{ key: "x", value: "garbage 1", partition: 1 }, { key: "x", value: "{\"click_id\":1}", partition: 2 }])

    // live input for ~6 s while the daemon is killed, restarted, stopped and restarted
    const live = spawn(node, [distCli, "generate", "--to", "kafka", "--rate", "2500", "--duration", "6", "--seed", "6"],
      { env: { ...process.env, ...kafkaEnv }, stdio: "ignore" })
    const liveDone = new Promise((resolve) => live.once("exit", resolve))
    const group = uniqueName("crashy")

    let daemon = await startDaemon(engineEnv(crashed, group))
    running.push(daemon)
    await waitFor("first rows", () => count(crashed.url, "shop.checkout_attribution"), (n) => n > 0, 20_000)
    await daemon.stop("SIGKILL")

    daemon = await startDaemon(engineEnv(crashed, group))
    running.push(daemon)
    const d = daemon
    await waitFor("ready", () => httpStatus(d.port, "/readyz"), (s) => s === 200, 20_000)
    await sleep(1_000)
    const term = await daemon.stop("SIGTERM")
    expect(term.code, daemon.output().slice(-2_000)).toBe(0)

    daemon = await startDaemon(engineEnv(crashed, group))
    running.push(daemon)
    await liveDone
    await produce(brokers!, checkouts, [{ key: "y", value: "", partition: 0 }])

    const cm = await readTopic(brokers!, clicks), km = await readTopic(brokers!, checkouts)
    const cs = clicksOf(cm), ks = checkoutsOf(km)
    const bad = cm.length - cs.length + km.length - ks.length
    expect(bad).toBe(3)
    await settle(crashed.url, ks.length, bad, daemon)
    expect(differences(attribution(cs, ks), await writtenAttribution(crashed.url))).toEqual([])
    // every valid message in the lake exactly once, whatever the kills cut (a clean stop writes what is buffered)
    expect((await daemon.stop("SIGTERM")).code).toBe(0)
    for (const [topic, valid] of [[clicks, cs.length], [checkouts, ks.length]] as const) {
      expect(await lakeMessages(lakeDir, topic), `raw/${topic}`).toEqual({ n: String(valid), distinct_messages: String(valid) })
    }

    // the same input, read once without interruption
    const uninterrupted = await startDaemon(engineEnv(plain, uniqueName("plain")))
    running.push(uninterrupted)
    await settle(plain.url, ks.length, bad, uninterrupted)
    expect(await tables(crashed.url)).toEqual(await tables(plain.url))
  }, 120_000)
})
