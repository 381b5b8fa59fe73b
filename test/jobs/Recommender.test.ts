/**
 * The recommender job on the engine's task (TopologyTestDriver): each flush hands on one list
 * per user seen since the last, learned from the task's events; a paid checkout leaves its
 * product out for 24 h of event time; a snapshot is handed on at the first flush and then
 * every `snapshotEveryMs` of processing time, and a task restored from it recommends exactly
 * what the original did.
 */
import { assert, describe, it } from "vitest"
import { TopologyTestDriver } from "../../src/engine/TopologyTestDriver.ts"
import * as Attribution from "../../src/jobs/Attribution.ts"
import * as Recommender from "../../src/jobs/Recommender.ts"
import type { ProductInfo } from "../../src/recs/Model.ts"

const topics = { clicks: "clicks", checkouts: "checkouts" }
const T = Date.parse("2026-11-20T10:00:00Z")
const catalog = (id: string): ProductInfo | undefined => {
  const n = Number(id.slice(1))
  return Number.isNaN(n) ? undefined : { category: n < 50 ? "dresses" : "shoes", brand: `b${n % 5}` }
}
const none = { write: () => { throw new Error("the driver has no sink") } }

const setup = (snapshotEveryMs = 60_000) => {
  const recs = new Recommender.Recommenders(catalog)
  const driver = new TopologyTestDriver<Attribution.ShopEvent>({
    decode: Attribution.decode(topics),
    jobs: [Recommender.node(recs, { snapshotEveryMs }, none as never)]
  }, { partitions: [{ topic: "clicks", partition: 0 }, { topic: "checkouts", partition: 0 }], wallClock: T })
  return { recs, driver }
}

let seq = 0
const click = (user: string, product: string, ts: number, eventType = "view") =>
  JSON.stringify({ click_id: `c${seq++}`, user_id: user, product_id: product, source: "Google", event_type: eventType, click_timestamp: new Date(ts).toISOString() })
const checkout = (user: string, product: string, ts: number, status = "Success") =>
  JSON.stringify({
    checkout_id: `k${seq++}`, user_id: user, product_id: product, quantity: 1, shipping_cost: 1, discount: 0, payment_method: "Visa",
    payment_status: status, payment_description: "None", shipping_address: "x", checkout_timestamp: new Date(ts).toISOString()
  })

const lists = (driver: TopologyTestDriver<Attribution.ShopEvent>) =>
  driver.outputs<Recommender.RecOutput>(Recommender.JOB).filter((o): o is Recommender.RecList => o._tag === "List")
const snapshots = (driver: TopologyTestDriver<Attribution.ShopEvent>) =>
  driver.outputs<Recommender.RecOutput>(Recommender.JOB).filter((o): o is Recommender.RecSnapshot => o._tag === "Snapshot")

/** many shoppers of dresses who also look at p1..p3 together, so the model has something to learn */
const crowd = (driver: TopologyTestDriver<Attribution.ShopEvent>, users = 30) => {
  let t = T
  for (let u = 0; u < users; u++) for (const p of ["p1", "p2", "p3", `p${10 + (u % 7)}`]) driver.pipe("clicks", click(`crowd${u}`, p, t += 1_000))
  driver.advanceWallClock(31_000) // checkouts has sent nothing: idle, it no longer holds clicks back
  return t
}

describe("recommender job", () => {
  it("after a user's event, the next flush hands on their list: at most 10 products of the catalogue, best first", () => {
    const { driver, recs } = setup()
    const t = crowd(driver)
    const before = lists(driver).length
    driver.pipe("clicks", click("u1", "p1", t + 1_000))
    const mine = lists(driver).slice(before)
    assert.deepStrictEqual(mine.map((l) => l.userId), ["u1"], "one list, for the user who sent the event")
    const items = mine[0]!.items
    assert.isAtLeast(items.length, 1)
    assert.isAtMost(items.length, 10)
    for (let i = 1; i < items.length; i++) assert.isAtLeast(items[i - 1]!.score, items[i]!.score)
    assert.include(items.map((i) => i.productId), "p2", "p2 is what the crowd looked at with p1")
    assert.deepStrictEqual(recs.lookup("u1")?.items, items, "the API's list is the one handed on")
    assert.isUndefined(recs.lookup("nobody"))
  })

  it("a paid checkout leaves its product out for 24 h of event time; a failed one does not", () => {
    const { driver, recs } = setup()
    let t = crowd(driver)
    driver.pipe("clicks", click("u1", "p1", t += 1_000))
    driver.pipe("checkouts", checkout("u1", "p2", t += 1_000, "Failed"))
    assert.include(recs.lookup("u1")!.items.map((i) => i.productId), "p2")
    driver.pipe("checkouts", checkout("u1", "p2", t += 1_000))
    assert.notInclude(recs.lookup("u1")!.items.map((i) => i.productId), "p2", "bought: left out")
    // a day later (event time) the purchase no longer counts
    t += 86_400_000 + 1_000
    for (const p of ["p1", "p2", "p3"]) driver.pipe("clicks", click("crowd0", p, t += 1_000))
    driver.pipe("clicks", click("u1", "p1", t += 1_000))
    assert.include(recs.lookup("u1")!.items.map((i) => i.productId), "p2", "24 h later it may come back")
  })

  it("hands on a snapshot at the first flush and then every snapshotEveryMs; a task restored from it answers alike", () => {
    const { driver, recs } = setup(60_000)
    const t = crowd(driver, 10)
    assert.strictEqual(snapshots(driver).length, 1, "one at the first flush")
    driver.advanceWallClock(28_000)
    driver.pipe("clicks", click("u1", "p1", t + 1_000))
    assert.strictEqual(snapshots(driver).length, 1)
    driver.advanceWallClock(2_000)
    const last = snapshots(driver)
    assert.strictEqual(last.length, 2, "another once a minute of processing time has passed")
    const state = JSON.parse(last[1]!.json) as Recommender.TaskModelState
    const copy = new Recommender.Recommenders(catalog)
    copy.create(0).restore(state)
    for (const user of ["u1", "crowd3", "crowd7"]) assert.deepStrictEqual(copy.lookup(user), recs.lookup(user), user)
    assert.deepStrictEqual(copy.popular(), recs.popular())
  })

  it("clicks without a product and failed checkouts teach nothing", () => {
    const { driver, recs } = setup()
    driver.pipe("clicks", JSON.stringify({ click_id: "landing", user_id: "u9", source: "Google", click_timestamp: new Date(T).toISOString() }))
    driver.pipe("checkouts", checkout("u9", "p1", T + 1, "Failed"))
    assert.isUndefined(recs.lookup("u9"))
    assert.deepStrictEqual(lists(driver), [])
  })
})
