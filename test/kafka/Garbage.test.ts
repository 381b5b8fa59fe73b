/**
 * SPEC §1: a bad message never stalls its partition, and a partition that carries nothing but
 * garbage, still flowing, never stalls the others: the checkouts of the good partition are
 * all written while the garbage keeps coming, and every bad message is in ingest_errors.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createDatabase, dropDatabase, postgresAvailable } from "../support/TestDatabase.ts"
import { createTopics, kafkaBrokers, produce, uniqueName } from "../support/Kafka.ts"
import { count, type Daemon, sleep, startDaemon, waitFor } from "./Harness.ts"

const brokers = await kafkaBrokers()
const pgOk = await postgresAvailable()

describe.skipIf(brokers === undefined || !pgOk)("a partition of pure garbage", () => {
  let db: { url: string; name: string }
  let daemon: Daemon | undefined
  beforeAll(async () => { db = await createDatabase("insights_garbage") })
  afterAll(async () => {
    if (daemon !== undefined) await daemon.stop("SIGKILL")
    if (db) await dropDatabase(db.name)
  })

  it("never stalls the others, even while it keeps flowing", async () => {
    const clicks = uniqueName("clicks"), checkouts = uniqueName("checkouts")
    await createTopics(brokers!, [clicks, checkouts], 2)
    // good data on partition 0 of both topics
    const t0 = Date.now() - 60_000
    const at = (ms: number) => new Date(t0 + ms).toISOString()
    const users = Array.from({ length: 50 }, (_, i) => `g-user-${i}`)
    await produce(brokers!, clicks, users.map((u, i) => ({
      key: u, partition: 0, value: JSON.stringify({ click_id: `g-c-${i}`, user_id: u, product_id: null, source: "Google", click_timestamp: at(i * 100) })
    })))
    await produce(brokers!, checkouts, users.map((u, i) => ({
      key: u, partition: 0, value: JSON.stringify({
        checkout_id: `g-k-${i}`, user_id: u, product_id: "5001", quantity: 1, shipping_cost: 1, discount: 0, payment_method: "Visa",
        payment_status: "Success", payment_description: "None", checkout_timestamp: at(i * 100 + 50)
      })
    })))
    // garbage on clicks partition 1, all along
    let flowing = true
    let sent = 0
    const garbage = (async () => {
      while (flowing) {
        await produce(brokers!, clicks, Array.from({ length: 20 }, (_, i) => ({ key: "junk", partition: 1, value: `garbage ${sent + i}` })))
        sent += 20
        await sleep(150)
      }
    })()
    try {
      daemon = await startDaemon({
        KAFKA_BROKERS: brokers!, CLICKS_TOPIC: clicks, CHECKOUTS_TOPIC: checkouts, KAFKA_GROUP_ID: uniqueName("engine"),
        DATABASE_URL: db.url, IDLE_TIMEOUT_MS: "1500"
      })
      const d = daemon
      await waitFor("the good partition's checkouts, garbage still flowing", () => count(db.url, "shop.checkout_attribution"), (n) => n >= users.length, 20_000)
        .catch((e) => { throw new Error(`${(e as Error).message}\n${d.output().slice(-2_000)}`) })
      expect(flowing).toBe(true)
    } finally {
      flowing = false
      await garbage
    }
    await waitFor("every garbage message recorded", () => count(db.url, "shop.ingest_errors"), (n) => n >= sent, 15_000)
    expect(await count(db.url, "shop.ingest_errors")).toBe(sent)
    const { code } = await daemon.stop("SIGTERM")
    daemon = undefined
    expect(code).toBe(0)
  }, 60_000)
})
