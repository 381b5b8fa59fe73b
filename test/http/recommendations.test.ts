/**
 * Recommendations end to end: `node dist/main.js` with the in-process generator on a fresh
 * database. Users get personalised lists in shop.user_recommendations and from the API (SPEC
 * §7 shape, products described from shop.products), and each task's model is stored. The
 * restore after a restart is tested on Kafka (test/kafka/Recommendations.test.ts): a generator
 * run never resumes another's positions.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { createDatabase, dropDatabase, postgresAvailable, query } from "../support/TestDatabase.ts"
import { type Daemon, startDaemon, waitFor } from "./Daemon.ts"

const available = await postgresAvailable()

interface Body {
  user_id: string
  personalized: boolean
  updated_at: string | null
  items: Array<{ product_id: string; name: string | null; category: string | null; brand: string | null; price: number | null; score: number }>
}

describe.skipIf(!available)("recommendations in the daemon", () => {
  let db: { readonly url: string; readonly name: string }
  let daemon: Daemon | undefined
  const env = () => ({ DATABASE_URL: db.url, GENERATOR_RATE: "400", GENERATOR_SEED: "11", RECS_SNAPSHOT_MS: "1000", KAFKA_PARTITIONS: "2" })

  beforeAll(async () => { db = await createDatabase("insights_recs_daemon") })
  afterAll(async () => {
    await daemon?.kill()
    if (db !== undefined) await dropDatabase(db.name)
  })

  it("serves personalised lists and stores them with a snapshot of each task", async () => {
    daemon = await startDaemon(env())
    const users = await waitFor("30 users with stored lists and a snapshot of each task", async () => {
      const u = await query<{ user_id: string }>(db.url, "SELECT DISTINCT user_id FROM shop.user_recommendations ORDER BY user_id LIMIT 30")
      const s = await query<{ n: number }>(db.url, "SELECT count(*)::int AS n FROM shop.recommender_state")
      return u.length === 30 && s[0]!.n === 2 ? u.map((r) => r.user_id) : undefined
    }, 60_000)

    for (const user of users.slice(0, 5)) {
      const res = await daemon.get(`/api/users/${encodeURIComponent(user)}/recommendations`)
      assert.strictEqual(res.status, 200)
      const body = await res.json() as Body
      assert.strictEqual(body.user_id, user)
      assert.isTrue(body.personalized)
      assert.isNotNull(body.updated_at)
      assert.isAtLeast(body.items.length, 1)
      assert.isAtMost(body.items.length, 10)
      for (let i = 1; i < body.items.length; i++) assert.isAtLeast(body.items[i - 1]!.score, body.items[i]!.score, "best first")
      const products = await query<{ product_id: string; name: string; category: string; brand: string; price: string }>(db.url,
        "SELECT product_id, name, category, brand, price::text FROM shop.products WHERE product_id = ANY($1)", [body.items.map((i) => i.product_id)])
      assert.strictEqual(products.length, body.items.length, "every recommended product is in shop.products")
      for (const item of body.items) {
        const p = products.find((x) => x.product_id === item.product_id)!
        assert.deepStrictEqual([item.name, item.category, item.brand, item.price], [p.name, p.category, p.brand, Number(p.price)])
      }
      const stored = await query<{ rank: number }>(db.url, "SELECT rank FROM shop.user_recommendations WHERE user_id = $1 ORDER BY rank", [user])
      assert.deepStrictEqual(stored.map((r) => r.rank), stored.map((_, i) => i + 1), "ranks 1..n")
    }

    daemon.child.kill("SIGTERM")
    assert.strictEqual((await daemon.exited).code, 0)
  })
})
