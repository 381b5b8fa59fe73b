/**
 * Real Kafka end to end, through the daemon (`node dist/main.js` with KAFKA_BROKERS): events
 * produced by `insights generate --to kafka`, by kcat with its own partitioner, in the Flink
 * version's Python-generator JSON without a key, with an unexpected key, and a burst of
 * garbage, become exactly the rows an independent oracle computes from what is in the
 * topics; the daemon is ready once it has partitions, stops cleanly on SIGTERM with its
 * positions in PostgreSQL and in Kafka, and resumes where it stopped.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createDatabase, dropDatabase, postgresAvailable, query } from "../support/TestDatabase.ts"
import { committedOffsets, endOffsets, kafkaBrokers, produce, uniqueName } from "../support/Kafka.ts"
import {
  attribution, checkoutsOf, clicksOf, count, type Daemon, differences, generate, httpStatus, kcatProduce, readTopic,
  startDaemon, waitFor, writtenAttribution, attributionPositions
} from "./Harness.ts"

const brokers = await kafkaBrokers()
const pgOk = await postgresAvailable()

describe.skipIf(brokers === undefined || !pgOk)("Kafka → daemon → PostgreSQL", () => {
  let db: { url: string; name: string }
  const clicks = uniqueName("clicks"), checkouts = uniqueName("checkouts"), group = uniqueName("engine")
  const kafkaEnv = () => ({ KAFKA_BROKERS: brokers!, CLICKS_TOPIC: clicks, CHECKOUTS_TOPIC: checkouts, KAFKA_PARTITIONS: "4" })
  const daemonEnv = () => ({ ...kafkaEnv(), KAFKA_GROUP_ID: group, DATABASE_URL: db.url, IDLE_TIMEOUT_MS: "1500" })
  let daemon: Daemon | undefined
  const garbage = ["not json", "{", "[1,2]", "42", "{\"click_id\":\"g1\"}"]

  beforeAll(async () => {
    db = await createDatabase("insights_kafka")
  })
  afterAll(async () => {
    if (daemon !== undefined) await daemon.stop("SIGKILL")
    if (db) await dropDatabase(db.name)
  })

  /** Waits until every checkout in the topics has its row and the tables stop changing. */
  const settled = async (expectedCheckouts: number, expectedErrors: number) => {
    await waitFor("every checkout written", () => Promise.all([count(db.url, "shop.checkout_attribution"), count(db.url, "shop.ingest_errors")]),
      ([rows, errors]) => rows >= expectedCheckouts && errors >= expectedErrors, 45_000)
      .catch((e) => { throw new Error(`${(e as Error).message}\n--- daemon output ---\n${daemon?.output().slice(-3_000)}`) })
    await new Promise((r) => setTimeout(r, 1_000)) // nothing more may come
  }

  const expectations = async () => {
    const clickMessages = await readTopic(brokers!, clicks)
    const checkoutMessages = await readTopic(brokers!, checkouts)
    const cs = clicksOf(clickMessages)
    const ks = checkoutsOf(checkoutMessages)
    return {
      clickMessages, checkoutMessages, clicks: cs, checkouts: ks,
      expected: attribution(cs, ks),
      bad: clickMessages.length - cs.length + checkoutMessages.length - ks.length
    }
  }

  it("produces with `generate --to kafka`: keyed by user_id with murmur2, co-partitioned, topics created", async () => {
    const out = await generate(["--rate", "max", "--count", "12000", "--seed", "42"], kafkaEnv())
    expect(out).toMatch(/produced 12,000 messages/)
    expect(out).not.toMatch(/Warning/)
    const [cm, km] = [await readTopic(brokers!, clicks), await readTopic(brokers!, checkouts)]
    expect(cm.length + km.length).toBe(12_000)
    expect((await endOffsets(brokers!, clicks)).size).toBe(4)
    // a user's clicks and checkouts are on one partition number of both topics
    const partitionOf = new Map<string, number>()
    for (const m of [...cm, ...km]) {
      const user = JSON.parse(m.value!).user_id as string
      expect(m.key).toBe(user)
      expect(partitionOf.get(user) ?? m.partition).toBe(m.partition)
      partitionOf.set(user, m.partition)
    }
    expect(new Set(partitionOf.values()).size).toBe(4)
  }, 60_000)

  it("foreign producers: kcat's partitioner, the Flink generator's unkeyed JSON, an unexpected key, garbage", async () => {
    const km = await readTopic(brokers!, checkouts)
    const someCheckout = JSON.parse(km[0]!.value!) as Record<string, unknown>
    const now = Date.now()
    const iso = (ms: number) => new Date(ms).toISOString()
    const naive = (ms: number) => iso(ms).replace("T", " ").replace("Z", "")
    // kcat, default (CRC32) partitioner, keyed: a click and its checkout
    await kcatProduce(brokers!, clicks, [`kcat-user\t${JSON.stringify({ click_id: "kcat-c1", user_id: "ext-user-1", product_id: "5001", source: "Gmail", click_timestamp: iso(now) })}`], true)
    await kcatProduce(brokers!, checkouts, [`kcat-user\t${JSON.stringify({ ...someCheckout, checkout_id: "kcat-k1", user_id: "ext-user-1", product_id: "5001", checkout_timestamp: iso(now + 5) })}`], true)
    // the Flink version's Python generator: no key at all, integer ids, naive timestamps, no product_id / event_type;
    // on one partition number they join (the engine keys by the user_id they name) ...
    await kcatProduce(brokers!, clicks, [JSON.stringify({ click_id: 770001, user_id: 99000002, source: "Tiktok", user_agent: "ua", ip_address: "10.0.0.1", click_timestamp: naive(now + 1) })], false, 2)
    await kcatProduce(brokers!, checkouts, [JSON.stringify({ ...someCheckout, checkout_id: 770002, user_id: 99000002, product_id: 5002, checkout_timestamp: naive(now + 6) })], false, 2)
    // ... on two partition numbers they are in two tasks and cannot (SPEC §1: producers key by user_id)
    await kcatProduce(brokers!, clicks, [JSON.stringify({ click_id: 770003, user_id: 99000003, source: "Tiktok", click_timestamp: naive(now + 1) })], false, 0)
    await kcatProduce(brokers!, checkouts, [JSON.stringify({ ...someCheckout, checkout_id: 770004, user_id: 99000003, product_id: 5002, checkout_timestamp: naive(now + 6) })], false, 1)
    // an unexpected key: the engine keys by the decoded user_id
    await produce(brokers!, checkouts, [{ key: "someone-else", value: JSON.stringify({ ...someCheckout, checkout_id: "odd-key-k1", checkout_timestamp: iso(now + 7) }) }])
    // garbage, and a tombstone, in the middle of a partition that also has good data
    await produce(brokers!, clicks, [...garbage.map((value) => ({ key: "junk", value, partition: 3 })), { key: "junk", value: null, partition: 3 }])
  }, 30_000)

  it("the daemon writes exactly the oracle's rows, with the garbage in ingest_errors; ready once partitions are assigned", async () => {
    const e = await expectations()
    expect(e.expected.get("kcat-k1")).toBe("kcat-c1")
    expect(e.expected.get("770002")).toBe("770001")
    expect(e.expected.get("770004")).toBe(null)
    expect(e.bad).toBe(garbage.length + 1)

    daemon = await startDaemon(daemonEnv())
    const d = daemon
    const ready = await waitFor("/readyz", () => httpStatus(d.port, "/readyz"), (s) => s === 200 || d.process.exitCode !== null, 30_000)
      .catch((e) => { throw new Error(`${(e as Error).message}\n--- daemon output ---\n${d.output().slice(-3_000)}`) })
    expect(ready, d.output()).toBe(200)
    await settled(e.checkouts.length, e.bad)

    const actual = await writtenAttribution(db.url)
    expect(differences(e.expected, actual)).toEqual([])
    expect([...e.expected.values()].filter((c) => c !== null).length).toBeGreaterThan(e.checkouts.length * 0.8)
    const errors = await query<{ source: string; partition: number; payload: string; error: string }>(db.url,
      `SELECT source, "partition", payload, error FROM shop.ingest_errors ORDER BY "offset"`)
    expect(errors.map((r) => [r.source, r.partition, r.payload])).toEqual([...garbage, ""].map((g) => [clicks, 3, g]))
    expect(errors.at(-1)!.error).toMatch(/empty/)
    expect(await count(db.url, "shop.late_events")).toBe(0)
  }, 90_000)

  it("SIGTERM: exits 0 within 10 s, positions in PostgreSQL and Kafka's committed offsets at the end of every partition", async () => {
    const { code, ms } = await daemon!.stop("SIGTERM")
    expect(code, daemon!.output().slice(-2_000)).toBe(0)
    expect(ms).toBeLessThan(10_000)
    // kafkajs's negative-timer warning of every start is silenced, in the bundle too
    expect(daemon!.output()).not.toMatch(/Warning/)
    daemon = undefined
    for (const topic of [clicks, checkouts]) {
      const ends = await endOffsets(brokers!, topic)
      expect(await attributionPositions(db.url, `kafka:${group}`, topic)).toEqual(ends)
      expect(await committedOffsets(brokers!, group, topic)).toEqual(ends)
    }
  }, 30_000)

  it("restarted, it resumes at the stored positions: new events are attributed, nothing is lost or doubled", async () => {
    await generate(["--rate", "max", "--count", "3000", "--seed", "43"], kafkaEnv())
    const e = await expectations()
    daemon = await startDaemon(daemonEnv())
    await settled(e.checkouts.length, e.bad)
    expect(differences(e.expected, await writtenAttribution(db.url))).toEqual([])
    expect(await count(db.url, "shop.ingest_errors")).toBe(e.bad)
    const { code } = await daemon.stop("SIGTERM")
    expect(code).toBe(0)
    daemon = undefined
  }, 90_000)
})
