/**
 * The recommender's state survives restarts exactly: a daemon killed with SIGKILL mid-stream
 * (and then stopped with SIGTERM and started again) ends with the same model as one that ran
 * uninterrupted over the same topics: every user's list, asked of both through the API once
 * both have read everything, is the same, product for product and score for score. Each
 * restart restores the tasks from their snapshots (it says so) and resumes from the
 * positions stored with them, instead of re-reading the input.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createDatabase, dropDatabase, postgresAvailable, query } from "../support/TestDatabase.ts"
import { kafkaBrokers, uniqueName } from "../support/Kafka.ts"
import { type Daemon, generate, sleep, startDaemon, waitFor } from "./Harness.ts"

const brokers = await kafkaBrokers()
const pgOk = await postgresAvailable()
const N = 60_000

interface Body { personalized: boolean; items: Array<{ product_id: string; score: number }> }

describe.skipIf(brokers === undefined || !pgOk)("recommender restarts on Kafka", () => {
  const dbs: Array<{ url: string; name: string }> = []
  const clicks = uniqueName("clicks"), checkouts = uniqueName("checkouts")
  const kafkaEnv = { KAFKA_BROKERS: brokers ?? "", CLICKS_TOPIC: clicks, CHECKOUTS_TOPIC: checkouts, KAFKA_PARTITIONS: "2" }
  const env = (db: { url: string }, group: string) => ({
    ...kafkaEnv, KAFKA_GROUP_ID: group, DATABASE_URL: db.url, IDLE_TIMEOUT_MS: "1500", WATERMARK_DELAY_MS: "500", KAFKA_SESSION_TIMEOUT_MS: "6000",
    RECS_SNAPSHOT_MS: "100", SINK_FLUSH_ROWS: "200"
  })
  const running: Array<Daemon> = []
  const start = async (e: Record<string, string>) => {
    const d = await startDaemon(e)
    running.push(d)
    return d
  }

  beforeAll(async () => {
    dbs.push(await createDatabase("insights_recs_restart"), await createDatabase("insights_recs_plain"))
  })
  afterAll(async () => {
    for (const d of running) await d.stop("SIGKILL")
    for (const db of dbs) await dropDatabase(db.name)
  })

  /** the recommender's committed offsets, summed over every partition */
  const committed = async (url: string) =>
    Number((await query<{ n: string }>(url, "SELECT coalesce(sum(next_offset), 0)::text AS n FROM shop.source_positions WHERE job = 'recommendations'")
      .catch(() => [{ n: "0" }]))[0]!.n) // before the daemon's migrations ran
  const drained = (d: Daemon, url: string) =>
    waitFor("the recommender has committed every message", () => committed(url), (n) => n >= N, 90_000)
      .catch((e) => { throw new Error(`${(e as Error).message}\n--- daemon output ---\n${d.output().slice(-3_000)}`) })

  it("a daemon killed mid-stream and restarted ends with the same lists as an uninterrupted one", async () => {
    const [restarted, plain] = [dbs[0]!, dbs[1]!]
    // all of it produced first: both daemons read it as a backlog, merged by event time the same
    // way (live, a partition that is caught up is not waited for, so the order of events
    // between partitions, and with it the model, would depend on timing)
    await generate(["--rate", "max", "--count", String(N), "--seed", "77"], kafkaEnv)

    let d = await start(env(restarted, "recs-restarted"))
    await waitFor("a snapshot mid-stream", () => committed(restarted.url), (n) => n > 0, 60_000)
      .catch((e) => { throw new Error(`${(e as Error).message}\n--- daemon output ---\n${d.output().slice(-3_000)}`) })
    await d.stop("SIGKILL")
    const atKill = await committed(restarted.url)
    expect(atKill).toBeLessThan(N)

    d = await start(env(restarted, "recs-restarted"))
    await waitFor("the tasks restored from their snapshots", async () => d.output(), (o) => (o.match(/recommender restored from its snapshot/g) ?? []).length === 2, 30_000)
    expect(await committed(restarted.url)).toBeGreaterThanOrEqual(atKill)
    await drained(d, restarted.url)
    expect((await d.stop("SIGTERM")).code).toBe(0)
    d = await start(env(restarted, "recs-restarted"))
    await waitFor("restored again after a clean stop", async () => d.output(), (o) => (o.match(/recommender restored from its snapshot/g) ?? []).length === 2, 30_000)

    const u = await start(env(plain, "recs-plain"))
    await drained(u, plain.url)
    await sleep(1_000)

    const users = (await query<{ user_id: string }>(plain.url, "SELECT DISTINCT user_id FROM shop.user_recommendations ORDER BY user_id LIMIT 60")).map((r) => r.user_id)
    expect(users.length).toBe(60)
    const ask = async (daemon: Daemon, user: string) =>
      await (await fetch(`http://127.0.0.1:${daemon.port}/api/users/${encodeURIComponent(user)}/recommendations`)).json() as Body
    const differ: Array<string> = []
    for (const user of users) {
      const [a, b] = [await ask(d, user), await ask(u, user)]
      expect(b.personalized).toBe(true)
      if (JSON.stringify(a.items) !== JSON.stringify(b.items)) differ.push(`${user}: ${JSON.stringify(a.items.map((i) => i.product_id))} vs ${JSON.stringify(b.items.map((i) => i.product_id))}`)
    }
    expect(differ).toEqual([])
  }, 240_000)
})
