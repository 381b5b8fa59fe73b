/**
 * The broker stopped for ~30 s under a running daemon, then started again (issue 13). On a
 * broker of its own (a free port, a private data dir: the other suites share the main
 * broker, which is never stopped), with a backlog and a live stream being read:
 *
 * - while the broker is away the daemon stays up, `/readyz` is 503 with
 *   `source.detail` "Kafka broker unreachable since …: …";
 * - once it is back the daemon becomes ready by itself, reads what was produced since, and
 *   `shop.checkout_attribution` equals the oracle; every valid message is in the raw lake
 *   exactly once (nothing lost, nothing doubled);
 * - a daemon with a short `KAFKA_GIVE_UP_MS` exits 1 with one line once the broker has been
 *   away that long (a supervisor restarts it; it resumes from the positions in PostgreSQL).
 *
 * Under CI=true the suite fails when it cannot start its broker. `OUTAGE_LOG=<file>` keeps
 * both daemons' output there.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { isCI, uniqueName } from "../support/Kafka.ts"
import { createDatabase, dropDatabase, postgresAvailable } from "../support/TestDatabase.ts"
import {
  apiStatus, attribution, checkoutsOf, clicksOf, count, type Daemon, differences, distCli, freePort, generate, node, readTopic, sleep,
  startDaemon, waitFor, writtenAttribution, lakeMessages } from "./Harness.ts"

const exec = promisify(execFile)
const kafkaSh = path.resolve("scripts/kafka.sh")

/** A broker started by scripts/kafka.sh on free ports with its own data dir. */
interface OwnBroker {
  readonly brokers: string
  readonly start: () => Promise<void>
  readonly stop: () => Promise<void>
  readonly remove: () => Promise<void>
  /** the broker's JVM (scripts/kafka.sh's pid file) */
  readonly pid: () => number
}

const ownBroker = async (): Promise<OwnBroker> => {
  const port = await freePort()
  const controller = await freePort()
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "broker-outage-kafka-"))
  const env = {
    ...process.env, KAFKA_PORT: String(port), KAFKA_CONTROLLER_PORT: String(controller), KAFKA_DATA_DIR: dataDir,
    KAFKA_HEAP_OPTS: "-Xmx384m -Xms128m", KAFKA_START_TIMEOUT: "90"
  }
  const run = async (command: string) => {
    try {
      await exec("bash", [kafkaSh, command], { env, timeout: 120_000 })
    } catch (e) {
      const err = e as { message: string; stderr?: string }
      throw new Error(`scripts/kafka.sh ${command} (port ${port}, data ${dataDir}) failed: ${err.stderr?.slice(-2_000) ?? err.message}`)
    }
  }
  const broker: OwnBroker = {
    brokers: `127.0.0.1:${port}`,
    start: () => run("start"),
    pid: () => Number(fs.readFileSync(path.join(dataDir, "kafka.pid"), "utf8").trim()),
    stop: () => run("stop"),
    remove: async () => {
      await run("stop").catch(() => undefined)
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }
  try {
    await broker.start()
  } catch (e) {
    fs.rmSync(dataDir, { recursive: true, force: true })
    throw e
  }
  return broker
}

const pgOk = await postgresAvailable()
let broker: OwnBroker | undefined
if (pgOk) {
  try {
    broker = await ownBroker()
  } catch (e) {
    if (isCI) throw new Error(`a Kafka broker of its own is required under CI=true: ${(e as Error).message}`)
  }
}

interface Readiness {
  readonly status: number
  readonly body?: { readonly ready: boolean; readonly checks: Record<string, { readonly ok: boolean; readonly detail?: string }> }
}

const readyz = async (d: Daemon): Promise<Readiness> => {
  try {
    const r = await fetch(`http://127.0.0.1:${d.port}/readyz`, { signal: AbortSignal.timeout(3_000) })
    const text = await r.text()
    try {
      return { status: r.status, body: JSON.parse(text) }
    } catch {
      return { status: r.status }
    }
  } catch {
    return { status: 0 }
  }
}

const UNREACHABLE = /^Kafka broker unreachable since \d{4}-\d\d-\d\dT[\d:.]+Z: .+/

describe.skipIf(broker === undefined)("the Kafka broker stopped and started under a running daemon", () => {
  const dbs: Array<{ url: string; name: string }> = []
  const clicks = uniqueName("clicks"), checkouts = uniqueName("checkouts")
  const kafkaEnv = { KAFKA_BROKERS: broker?.brokers ?? "", CLICKS_TOPIC: clicks, CHECKOUTS_TOPIC: checkouts, KAFKA_PARTITIONS: "3" }
  const lakeDir = fs.mkdtempSync(path.join(os.tmpdir(), "outage-lake-"))
  const running: Array<Daemon> = []
  const generators: Array<ChildProcess> = []

  beforeAll(async () => {
    dbs.push(await createDatabase("insights_outage"), await createDatabase("insights_giveup"))
  })
  afterAll(async () => {
    for (const g of generators) if (g.exitCode === null) g.kill("SIGKILL")
    for (const d of running) await d.stop("SIGKILL")
    for (const db of dbs) await dropDatabase(db.name)
    await broker?.remove()
    fs.rmSync(lakeDir, { recursive: true, force: true })
  })

  it("stays up and not ready while the broker is away, resumes by itself with nothing lost or doubled; a short KAFKA_GIVE_UP_MS exits 1", async () => {
    const own = broker!
    const [db, quitterDb] = [dbs[0]!, dbs[1]!]
    const withOutput = (d: Daemon) => (e: unknown) => {
      throw new Error(`${(e as Error).message}\n--- daemon ---\n${d.output().slice(-4_000)}`)
    }
    await generate(["--rate", "max", "--count", "4000", "--seed", "21"], kafkaEnv) // the backlog; creates the topics

    const daemon = await startDaemon({
      ...kafkaEnv, KAFKA_GROUP_ID: uniqueName("outage"), DATABASE_URL: db.url, IDLE_TIMEOUT_MS: "1500", WATERMARK_DELAY_MS: "500",
      KAFKA_SESSION_TIMEOUT_MS: "6000", LAKE_DIR: lakeDir, LAKE_FLUSH_MS: "1000"
    })
    running.push(daemon)
    // the give-up case: its own empty topics, so it costs little while it waits
    const quitter = await startDaemon({
      KAFKA_BROKERS: own.brokers, CLICKS_TOPIC: uniqueName("clicks"), CHECKOUTS_TOPIC: uniqueName("checkouts"), KAFKA_PARTITIONS: "1",
      KAFKA_GROUP_ID: uniqueName("quitter"), DATABASE_URL: quitterDb.url, KAFKA_GIVE_UP_MS: "8000", KAFKA_SESSION_TIMEOUT_MS: "6000",
      LAKE_DIR: path.join(lakeDir, "quitter")
    })
    running.push(quitter)

    // a live stream, cut by the outage
    const live = spawn(node, [distCli, "generate", "--to", "kafka", "--rate", "1500", "--duration", "60", "--seed", "22"],
      { env: { ...process.env, ...kafkaEnv }, stdio: "ignore" })
    generators.push(live)
    const liveDone = new Promise((resolve) => live.once("exit", resolve))

    await waitFor("ready", () => readyz(daemon), (r) => r.status === 200, 30_000).catch(withOutput(daemon))
    await waitFor("the quitter ready", () => readyz(quitter), (r) => r.status === 200, 30_000).catch(withOutput(quitter))
    await waitFor("first rows", () => count(db.url, "shop.checkout_attribution"), (n) => n > 0, 20_000).catch(withOutput(daemon))
    await sleep(2_000)
    const rowsBefore = await count(db.url, "shop.checkout_attribution")

    // ---- the broker goes away for ~30 s
    const stopping = Date.now()
    await own.stop()
    const stoppedAt = Date.now()
    live.kill("SIGKILL") // what it had sent is in the log; nothing is retried into the restarted broker
    await liveDone

    const notReady = await waitFor("/readyz 503 with the reason", () => readyz(daemon),
      (r) => r.status === 503 && UNREACHABLE.test(r.body?.checks["source"]?.detail ?? ""), 20_000, 250).catch(withOutput(daemon))
    const notReadyAfterMs = Date.now() - stoppedAt
    expect(notReady.body?.checks["source"]?.ok).toBe(false)
    const since = Date.parse(/since (\S+):/.exec(notReady.body!.checks["source"]!.detail!)![1]!)

    // the quitter gives up after KAFKA_GIVE_UP_MS with one line and exit code 1
    const quitCode = await Promise.race([quitter.exited, sleep(30_000).then(() => "still running")])
    const quitAfterMs = Date.now() - stoppedAt
    expect(quitCode, quitter.output().slice(-3_000)).toBe(1)
    const lastLine = quitter.output().trim().split("\n").at(-1) ?? ""
    expect(lastLine).toMatch(/^insights-engine: Kafka broker unreachable for \d+ s \(since .+, give-up limit 8000 ms\): .+/)
    expect(quitAfterMs).toBeGreaterThanOrEqual(8_000 - (stoppedAt - stopping))

    // the daemon stays alive and not ready for the whole outage
    while (Date.now() - stopping < 30_000) {
      expect(daemon.process.exitCode, daemon.output().slice(-3_000)).toBeNull()
      const r = await readyz(daemon)
      expect(r.status).toBe(503)
      expect(r.body?.checks["source"]?.detail).toMatch(UNREACHABLE)
      await sleep(1_000)
    }
    const outageMs = Date.now() - stopping

    // ---- the broker is back: ready again by itself, then more live input
    const starting = Date.now()
    await own.start()
    const backAt = Date.now()
    await waitFor("ready again", () => readyz(daemon), (r) => r.status === 200, 90_000, 250).catch(withOutput(daemon))
    const resumedAfterMs = Date.now() - backAt
    expect(daemon.process.exitCode).toBeNull()
    await generate(["--rate", "2000", "--duration", "3", "--seed", "23"], kafkaEnv)

    const cm = await readTopic(own.brokers, clicks), km = await readTopic(own.brokers, checkouts)
    const cs = clicksOf(cm), ks = checkoutsOf(km)
    expect(cm.length - cs.length + km.length - ks.length).toBe(0)
    await waitFor("every checkout written", () => count(db.url, "shop.checkout_attribution"), (n) => n >= ks.length, 60_000)
      .catch(withOutput(daemon))
    await sleep(1_000)
    expect(differences(attribution(cs, ks), await writtenAttribution(db.url))).toEqual([])
    expect((await daemon.stop("SIGTERM")).code).toBe(0)

    // every valid message in the lake exactly once
    for (const [topic, valid] of [[clicks, cs.length], [checkouts, ks.length]] as const) {
      expect(await lakeMessages(lakeDir, topic), `raw/${topic}`).toEqual({ n: String(valid), distinct_messages: String(valid) })
    }

    if (process.env["OUTAGE_LOG"]) fs.writeFileSync(process.env["OUTAGE_LOG"], daemon.output() + "\n--- quitter ---\n" + quitter.output())
    console.log(`broker outage: stop took ${stoppedAt - stopping} ms, unreachable ${since - stopping} ms after the stop began, ` +
      `/readyz 503 ${notReadyAfterMs} ms after the broker was down, ` +
      `start took ${backAt - starting} ms, ` +
      `the quitter exited ${quitAfterMs} ms after, outage ${outageMs} ms, ready again ${resumedAfterMs} ms after the broker was back; ` +
      `${rowsBefore} rows before the outage, ${ks.length} checkouts and ${cs.length} clicks in all`)
  }, 150_000)

  it("a broker that hangs (SIGSTOP, connections open, no answers) for 25 s: not ready with the reason, then resumes by itself with nothing lost or doubled; a SIGTERM during an outage still stops within 10 s, exit 0", async () => {
    const own = broker!
    const db = await createDatabase("insights_hang")
    dbs.push(db)
    const topics = { CLICKS_TOPIC: uniqueName("clicks"), CHECKOUTS_TOPIC: uniqueName("checkouts") }
    const env = { ...kafkaEnv, ...topics }
    const hangLake = fs.mkdtempSync(path.join(os.tmpdir(), "hang-lake-"))
    const withOutput = (d: Daemon) => (e: unknown) => {
      throw new Error(`${(e as Error).message}\n--- daemon ---\n${d.output().slice(-4_000)}`)
    }
    await generate(["--rate", "max", "--count", "3000", "--seed", "31"], env)
    const daemon = await startDaemon({
      ...env, KAFKA_GROUP_ID: uniqueName("hang"), DATABASE_URL: db.url, IDLE_TIMEOUT_MS: "1500", WATERMARK_DELAY_MS: "500",
      KAFKA_SESSION_TIMEOUT_MS: "6000", LAKE_DIR: hangLake, LAKE_FLUSH_MS: "1000"
    })
    running.push(daemon)
    await waitFor("ready", () => readyz(daemon), (r) => r.status === 200, 30_000).catch(withOutput(daemon))
    await waitFor("first rows", () => count(db.url, "shop.checkout_attribution"), (n) => n > 0, 20_000).catch(withOutput(daemon))

    // a live stream, cut by the hang: messages the daemon has not fetched yet are waiting
    const live = spawn(node, [distCli, "generate", "--to", "kafka", "--rate", "1500", "--duration", "60", "--seed", "33"],
      { env: { ...process.env, ...env }, stdio: "ignore" })
    generators.push(live)
    await sleep(3_000)

    // ---- the broker hangs: its process stopped, its sockets still open
    const pid = own.pid()
    const hungAt = Date.now()
    process.kill(pid, "SIGSTOP")
    live.kill("SIGKILL") // what the broker took is in its log
    let notReadyAfterMs: number
    try {
      await waitFor("/readyz 503 with the reason", () => readyz(daemon),
        (r) => r.status === 503 && UNREACHABLE.test(r.body?.checks["source"]?.detail ?? ""), 20_000, 250).catch(withOutput(daemon))
      notReadyAfterMs = Date.now() - hungAt
      // silence from a broker that does not answer is not idleness (I is 1.5 s here): no
      // partition that was delivering goes idle, so the watermark does not pass what waits
      await sleep(3_000)
      const status = await apiStatus<{ partitions: ReadonlyArray<{ topic: string; partition: number; idle: boolean }> }>(daemon)
      expect(status?.partitions.length, "the daemon's partitions").toBe(6)
      expect(status?.partitions.filter((p) => p.idle).map((p) => `${p.topic}/${p.partition}`), "idle while the broker hangs").toEqual([])
      while (Date.now() - hungAt < 25_000) {
        expect(daemon.process.exitCode, daemon.output().slice(-3_000)).toBeNull()
        expect((await readyz(daemon)).status).toBe(503)
        await sleep(1_000)
      }
    } finally {
      process.kill(pid, "SIGCONT")
    }
    const resumedAt = Date.now()
    await waitFor("ready again", () => readyz(daemon), (r) => r.status === 200, 90_000, 250).catch(withOutput(daemon))
    const readyAfterMs = Date.now() - resumedAt
    await generate(["--rate", "2000", "--duration", "3", "--seed", "32"], env)

    const cm = await readTopic(own.brokers, topics.CLICKS_TOPIC), km = await readTopic(own.brokers, topics.CHECKOUTS_TOPIC)
    const cs = clicksOf(cm), ks = checkoutsOf(km)
    await waitFor("every checkout written", () => count(db.url, "shop.checkout_attribution"), (n) => n >= ks.length, 60_000)
      .catch(withOutput(daemon))
    await sleep(1_000)
    expect(differences(attribution(cs, ks), await writtenAttribution(db.url))).toEqual([])

    // ---- a stop asked for while the broker is away
    await own.stop()
    await waitFor("/readyz 503 again", () => readyz(daemon), (r) => r.status === 503, 20_000, 250).catch(withOutput(daemon))
    const stopAsked = Date.now()
    const stopped = await daemon.stop("SIGTERM")
    const stopMs = Date.now() - stopAsked
    expect(stopped.code, daemon.output().slice(-3_000)).toBe(0)
    expect(stopMs).toBeLessThan(10_000)
    await own.start() // for whatever runs after
    for (const [topic, valid] of [[topics.CLICKS_TOPIC, cs.length], [topics.CHECKOUTS_TOPIC, ks.length]] as const) {
      expect(await lakeMessages(hangLake, topic), `raw/${topic}`).toEqual({ n: String(valid), distinct_messages: String(valid) })
    }
    fs.rmSync(hangLake, { recursive: true, force: true })
    console.log(`broker hang: /readyz 503 ${notReadyAfterMs!} ms after SIGSTOP, ready again ${readyAfterMs} ms after SIGCONT; ` +
      `SIGTERM during an outage: exit 0 after ${stopMs} ms; ${ks.length} checkouts and ${cs.length} clicks`)
  }, 180_000)
})
