/**
 * Chaos (issue 13): the daemon reads a backlog and a stream produced live (late events,
 * redelivered duplicates and garbage among them) and is killed with SIGKILL at random moments
 * (CHAOS_KILLS times, 10 by default; the moments drawn from CHAOS_SEED), restarted each time.
 * At the end every table it writes equals an uninterrupted run's over the same topics, row for
 * row, and every valid message is in the raw lake exactly once. Then the same with
 * `WORKERS=2`, each kill either the whole process (its worker must stop too: no orphan) or
 * only the worker (the primary starts it again). `scripts/chaos` runs it with a seed and a
 * count of your choosing.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeRandom } from "../../src/generator/Random.ts"
import { createDatabase, dropDatabase, postgresAvailable, query } from "../support/TestDatabase.ts"
import { kafkaBrokers, produce, uniqueName } from "../support/Kafka.ts"
import { apiStatus, checkoutsOf, clicksOf, count, type Daemon, distCli, generate, httpStatus, node, readTopic, sleep, startDaemon, waitFor, lakeMessages } from "./Harness.ts"

const brokers = await kafkaBrokers()
const pgOk = await postgresAvailable()
const KILLS = Number(process.env["CHAOS_KILLS"] ?? 10)
const SEED = Number(process.env["CHAOS_SEED"] ?? 20261201)

const tables = async (url: string) => ({
  attribution: await query(url, "SELECT * FROM shop.checkout_attribution ORDER BY checkout_id").then((rows) => rows.map(({ written_at: _w, ...rest }) => rest)),
  late: await query(url, "SELECT topic, event_id, user_id, event_timestamp, \"partition\", \"offset\", payload FROM shop.late_events ORDER BY topic, event_id"),
  errors: await query(url, `SELECT source, "partition", "offset", payload, error FROM shop.ingest_errors ORDER BY source, "partition", "offset"`),
  rollup: await query(url, "SELECT hour, dimension, value, checkouts, paid_checkouts, units, revenue, profit FROM shop.hourly_rollup ORDER BY 1, 2, 3")
})

const chaos = (workers: number) => describe.skipIf(brokers === undefined || !pgOk)(`chaos, WORKERS=${workers}: ${KILLS} kills -9 at random moments (seed ${SEED})`, () => {
  const dbs: Array<{ url: string; name: string }> = []
  const clicks = uniqueName("clicks"), checkouts = uniqueName("checkouts")
  const kafkaEnv = { KAFKA_BROKERS: brokers ?? "", CLICKS_TOPIC: clicks, CHECKOUTS_TOPIC: checkouts, KAFKA_PARTITIONS: "3" }
  const lakes = [fs.mkdtempSync(path.join(os.tmpdir(), "chaos-lake-")), fs.mkdtempSync(path.join(os.tmpdir(), "chaos-plain-lake-"))]
  const engineEnv = (db: { url: string }, group: string, lakeDir: string, members = workers) => ({
    ...kafkaEnv, KAFKA_GROUP_ID: group, DATABASE_URL: db.url, IDLE_TIMEOUT_MS: "1500", WATERMARK_DELAY_MS: "500",
    KAFKA_SESSION_TIMEOUT_MS: "6000", LAKE_DIR: lakeDir, LAKE_FLUSH_MS: "700", ROLLUP_EVERY_MS: "300", RECS_SNAPSHOT_MS: "400", WORKERS: String(members)
  })
  const running: Array<Daemon> = []

  beforeAll(async () => {
    dbs.push(await createDatabase("insights_chaos"), await createDatabase("insights_chaos_plain"))
  })
  afterAll(async () => {
    for (const d of running) await d.stop("SIGKILL")
    for (const db of dbs) await dropDatabase(db.name)
    for (const l of lakes) fs.rmSync(l, { recursive: true, force: true })
  })

  it("every table equals an uninterrupted run's, and the lake holds every valid message once", async () => {
    const [crashed, plain] = [dbs[0]!, dbs[1]!]
    const random = makeRandom(SEED + workers)
    await generate(["--rate", "max", "--count", "3000", "--seed", String(SEED % 1000)], kafkaEnv) // a backlog; creates the topics
    // redeliveries of what is there, and garbage
    const backlog = await readTopic(brokers!, checkouts)
    const again = backlog.slice(0, 40).map((m) => ({ key: m.key, value: m.value, partition: m.partition }))
    await produce(brokers!, checkouts, [...again, { key: "x", value: "{not json", partition: 1 }])
    // late events (older than anything in the topics: behind every partition's clock, so late
    // whatever the merge by event time has reached), produced while the daemon is being killed.
    // Two days back, not a fixed old date: each daemon's midnight export catches up every day
    // from the earliest checkout's (SPEC §6), and from 2025-06-01 that was ~550 days (~25 s of
    // exports per start on a quiet machine) competing with what the test measures
    const oldTime = new Date(Date.now() - 2 * 86_400_000).toISOString()
    const old = () => oldTime
    const lateCheckout = () => produce(brokers!, checkouts, [{ key: "late-user", value: JSON.stringify({
      checkout_id: "late-k1", user_id: "late-user", product_id: "5001", quantity: 1, shipping_cost: 1, discount: 0, payment_method: "Visa",
      payment_status: "Success", payment_description: "None", shipping_address: "x", checkout_timestamp: old()
    }), partition: 0 }])
    const lateClick = () => produce(brokers!, clicks, [{ key: "late-user", value: JSON.stringify({ click_id: "late-c1", user_id: "late-user", product_id: "5001", source: "Google", click_timestamp: old() }), partition: 0 }])

    // about 20 s of live input while the daemon is killed again and again
    const live = spawn(node, [distCli, "generate", "--to", "kafka", "--rate", "1500", "--duration", String(Math.max(20, KILLS * 2)), "--seed", String(SEED % 997)],
      { env: { ...process.env, ...kafkaEnv }, stdio: "ignore" })
    const liveDone = new Promise((resolve) => live.once("exit", resolve))
    const group = uniqueName("chaos")
    const moments: Array<string> = []
    const gone = (pid: number) => { try { process.kill(pid, 0); return false } catch { return true } }
    let daemon: Daemon | undefined
    for (let k = 0; k < KILLS; k++) {
      if (daemon === undefined) {
        daemon = await startDaemon(engineEnv(crashed, group, lakes[0]!))
        running.push(daemon)
      }
      const d = daemon
      // a random moment: one kill in three during start-up (migrations, joining the group,
      // restoring), the others once it reads (mid-batch, mid-flush, between flushes)
      if (!random.chance(1 / 3)) await waitFor("ready", () => httpStatus(d.port, "/readyz"), (s) => s === 200, 30_000)
      const wait = random.between(0, 1_500)
      await sleep(wait)
      const status = workers > 1 ? await apiStatus<{ workers?: ReadonlyArray<{ index: number; pid: number | null }> }>(d) : undefined
      const workerPids = (status?.workers ?? []).filter((w) => w.index > 0 && w.pid !== null).map((w) => w.pid!)
      if (workerPids.length > 0 && random.chance(1 / 2)) {
        moments.push(`worker@${wait}`)
        for (const pid of workerPids) process.kill(pid, "SIGKILL") // the primary starts it again
      } else {
        moments.push(`process@${wait}`)
        await d.stop("SIGKILL")
        daemon = undefined
        // its workers see their primary gone and stop: no orphan holds partitions
        await waitFor("the workers of the killed process gone", async () => workerPids.every(gone), (ok) => ok, 15_000)
      }
      // mid-way, once every partition has delivered (before that a partition that never
      // delivered holds the watermark at −∞, SPEC §2, and nothing is late)
      if (k === Math.floor(KILLS / 2)) await Promise.all([lateCheckout(), lateClick()])
    }
    await liveDone
    console.log(`[chaos WORKERS=${workers}] kills (what, after ms): ${moments.join(", ")}`)
    const last = daemon ?? await startDaemon(engineEnv(crashed, group, lakes[0]!))
    running.push(last)
    await waitFor("ready", () => httpStatus(last.port, "/readyz"), (s) => s === 200, 30_000)

    const cm = await readTopic(brokers!, clicks), km = await readTopic(brokers!, checkouts)
    const cs = clicksOf(cm), ks = checkoutsOf(km)
    const distinctCheckouts = new Set(ks.map((k) => k.id)).size
    const settle = async (url: string, d: Daemon) => {
      await waitFor("every checkout written", () => count(url, "shop.checkout_attribution"), (n) => n >= distinctCheckouts, 90_000)
        .catch((e) => { throw new Error(`${(e as Error).message} (kills ${moments.join(", ")} ms)\n--- daemon ---\n${d.output().slice(-3_000)}`) })
      await sleep(2_000) // the rollup and the last lake flush
    }
    await settle(crashed.url, last)
    expect((await last.stop("SIGTERM")).code).toBe(0) // a clean stop writes what the lake buffers

    // the reference: one worker, never interrupted
    const uninterrupted = await startDaemon(engineEnv(plain, uniqueName("plain"), lakes[1]!, 1))
    running.push(uninterrupted)
    await settle(plain.url, uninterrupted)
    expect((await uninterrupted.stop("SIGTERM")).code).toBe(0)
    const [a, b] = [await tables(crashed.url), await tables(plain.url)]
    expect(a.attribution.length).toBe(distinctCheckouts)
    expect(a.late.map((l) => l["event_id"]), "the late click and the late checkout").toEqual(expect.arrayContaining(["late-c1", "late-k1"]))
    expect(a.attribution.find((r) => r["checkout_id"] === "late-k1")?.["is_late"]).toBe(true)
    expect(a, `kills ${moments.join(", ")} ms`).toEqual(b)

    for (const [topic, valid] of [[clicks, cs.length], [checkouts, ks.length]] as const) {
      expect(await lakeMessages(lakes[0]!, topic), `raw/${topic} after ${KILLS} kills`).toEqual({ n: String(valid), distinct_messages: String(valid) })
    }
  }, 120_000 + KILLS * 15_000)
})

chaos(1)
chaos(2)
