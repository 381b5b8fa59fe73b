import { assert, describe, it } from "@effect/vitest"
import { defaultLimits, type ProductInfo, RecommenderModel } from "../../src/recs/Model.ts"

const hour = 3_600_000
const day = 24 * hour
const t0 = Date.UTC(2026, 10, 20, 10)

// 60 products: 6 categories × 10, 2 brands per category
const productIds = Array.from({ length: 60 }, (_, i) => `P${String(i).padStart(2, "0")}`)
const info = new Map<string, ProductInfo>(
  productIds.map((id, i) => [id, { category: `c${i % 6}`, brand: `b${i % 12}` }])
)
const catalog = (id: string) => info.get(id)
const ids = (list: ReadonlyArray<{ readonly productId: string }> | undefined) => (list ?? []).map((s) => s.productId)

/** a small deterministic history: users U0..U19 each like category c(u % 6) */
const history = (model: RecommenderModel, events = 2000) => {
  let x = 12345
  const next = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 4294967296
  for (let i = 0; i < events; i++) {
    const u = Math.floor(next() * 20)
    const onTaste = next() < 0.8
    const product = onTaste ? productIds[(u % 6) + 6 * Math.floor(next() * next() * 10)]! : productIds[Math.floor(next() * 60)]!
    const roll = next()
    model.observe(`U${u}`, product, roll < 0.5 ? "view" : roll < 0.8 ? "click" : roll < 0.95 ? "add_to_cart" : "purchase", t0 + i * 60_000)
  }
  return t0 + events * 60_000
}

describe("RecommenderModel", () => {
  it("keeps each user's and product's state within the limits", () => {
    const limits = { recentPerUser: 5, categoriesPerUser: 3, brandsPerUser: 4, boughtPerUser: 6, neighboursPerProduct: 7 }
    const model = new RecommenderModel(catalog, limits)
    // one user touches every product many times, buying as it goes
    for (let i = 0; i < 3000; i++) {
      model.observe("U1", productIds[i % 60]!, i % 3 === 0 ? "purchase" : "view", t0 + i * 1000)
    }
    const sizes = model.userSizes("U1")!
    assert.deepStrictEqual(sizes, { recent: 5, categories: 3, brands: 4, bought: 6 })
    // one product co-occurs with every other in many users' sessions
    for (let u = 0; u < 200; u++) {
      model.observe(`V${u}`, "P00", "view", t0 + u)
      model.observe(`V${u}`, productIds[1 + (u % 59)]!, "view", t0 + u + 1)
    }
    assert.strictEqual(model.neighbourCount("P00"), 7)
    for (const id of productIds) assert.isAtMost(model.neighbourCount(id), 7)
    assert.isAtMost(model.stats().neighbourLinks, 60 * 7)
    assert.strictEqual(model.stats().products, 60)
  })

  it("keeps co-occurring products with space-saving: a new one replaces the first of the least counted and gets its count + 1", () => {
    const model = new RecommenderModel(catalog, { neighboursPerProduct: 3, coOccurrenceDepth: 1 })
    let t = t0
    // each user views P00, then one other product right after: one pair (P00, other) each
    const pair = (other: string) => {
      const user = `W${t}`
      model.observe(user, "P00", "view", t++)
      model.observe(user, other, "view", t++)
    }
    pair("P01"); pair("P01"); pair("P02"); pair("P03")
    assert.deepStrictEqual(model.neighbours("P00"), [{ productId: "P01", count: 2 }, { productId: "P02", count: 1 }, { productId: "P03", count: 1 }])
    pair("P04") // full: replaces P02, the first with the least count, and inherits 1 + 1
    assert.deepStrictEqual(model.neighbours("P00"), [{ productId: "P01", count: 2 }, { productId: "P04", count: 2 }, { productId: "P03", count: 1 }])
    pair("P03") // known: counted up in place
    pair("P05") // the least counted is now P01 (2, first of the 2s)
    assert.deepStrictEqual(model.neighbours("P00"), [{ productId: "P05", count: 3 }, { productId: "P04", count: 2 }, { productId: "P03", count: 2 }])
    // and the other direction: P04's only neighbour is P00
    assert.deepStrictEqual(model.neighbours("P04"), [{ productId: "P00", count: 1 }])
  })

  it("tracks at most maxUsers users and products at most maxProducts", () => {
    const model = new RecommenderModel(catalog, { maxUsers: 50, maxProducts: 10 })
    for (let p = 0; p < 60; p++) model.observe("U0", productIds[p]!, "view", t0)
    for (let u = 1; u < 500; u++) model.observe(`U${u}`, productIds[u % 10]!, "view", t0 + u)
    assert.strictEqual(model.stats().users, 50)
    assert.strictEqual(model.stats().products, 10)
    // the most recent users stay
    assert.isDefined(model.recommend("U499", t0 + 500))
    assert.isUndefined(model.recommend("U0", t0 + 500))
  })

  it("leaves out what the user bought in the last 24 h, and brings it back after", () => {
    const model = new RecommenderModel(catalog)
    for (let i = 0; i < 5; i++) model.observe("U1", "P00", "view", t0 + i * 1000)
    model.observe("U1", "P06", "view", t0 + 6000)
    assert.include(ids(model.recommend("U1", t0 + 10_000)), "P00")
    model.observe("U1", "P00", "purchase", t0 + 20_000)
    assert.notInclude(ids(model.recommend("U1", t0 + 30_000)), "P00")
    assert.notInclude(ids(model.recommend("U1", t0 + 20_000 + day - 1)), "P00")
    assert.notInclude(ids(model.popular(t0 + 30_000, 10, "U1")), "P00")
    assert.include(ids(model.popular(t0 + 30_000, 10, "U2")), "P00")
    assert.include(ids(model.popular(t0 + 30_000, 10)), "P00")
    // 24 h later it may be recommended again
    assert.include(ids(model.recommend("U1", t0 + 20_000 + day + 1)), "P00")
    assert.include(ids(model.popular(t0 + 20_000 + day + 1, 10, "U1")), "P00")
  })

  it("a user with no events gets undefined; the popularity list works for everyone", () => {
    const model = new RecommenderModel(catalog)
    assert.isUndefined(model.recommend("nobody", t0))
    assert.deepStrictEqual(model.popular(t0), [])
    const end = history(model)
    assert.isUndefined(model.recommend("nobody", end))
    const popular = model.popular(end, 10)
    assert.strictEqual(popular.length, 10)
    assert.strictEqual(popular[0]!.score, 1)
    for (let i = 1; i < popular.length; i++) assert.isAtMost(popular[i]!.score, popular[i - 1]!.score)
  })

  it("lists are best first, at most n, scores in [0, 1], ties by product id", () => {
    const model = new RecommenderModel(catalog)
    const end = history(model)
    for (let u = 0; u < 20; u++) {
      const list = model.recommend(`U${u}`, end)!
      assert.strictEqual(list.length, 10)
      assert.strictEqual(new Set(ids(list)).size, 10)
      list.forEach((s, i) => {
        assert.isTrue(s.score >= 0 && s.score <= 1)
        if (i > 0) {
          const prev = list[i - 1]!
          assert.isTrue(prev.score > s.score || (prev.score === s.score && prev.productId < s.productId))
        }
      })
      assert.strictEqual(model.recommend(`U${u}`, end, 3)!.length, 3)
    }
    // a tie: two products seen once at the same time, nothing else known
    const tie = new RecommenderModel(catalog)
    tie.observe("U1", "P07", "view", t0)
    tie.observe("U1", "P03", "view", t0)
    assert.deepStrictEqual(ids(tie.recommend("U1", t0)), ["P03", "P07"])
  })

  it("learns the user's category", () => {
    const model = new RecommenderModel(catalog)
    const end = history(model, 5000)
    let onTaste = 0
    let all = 0
    for (let u = 0; u < 20; u++) {
      for (const s of model.recommend(`U${u}`, end)!) {
        all++
        if (info.get(s.productId)!.category === `c${u % 6}`) onTaste++
      }
    }
    // a list drawn at random would be 1/6 on taste; the model's is 0.57-0.61 on this history
    // whatever its co-occurrence depth (1 to 10), so at least three times that
    assert.isAbove(onTaste / all, 0.5)
  })

  it("is deterministic: the same events in the same order give the same lists", () => {
    const a = new RecommenderModel(catalog)
    const b = new RecommenderModel(catalog)
    const end = history(a)
    history(b)
    for (let u = 0; u < 20; u++) assert.deepStrictEqual(a.recommend(`U${u}`, end), b.recommend(`U${u}`, end))
    assert.deepStrictEqual(a.popular(end), b.popular(end))
    assert.deepStrictEqual(a.snapshot(), b.snapshot())
  })

  it("snapshot → JSON → restore gives the same lists, now and after more events", () => {
    const model = new RecommenderModel(catalog)
    const end = history(model)
    const restored = RecommenderModel.restore(catalog, JSON.parse(JSON.stringify(model.snapshot())))
    assert.deepStrictEqual(restored.stats(), model.stats())
    for (let u = 0; u < 20; u++) assert.deepStrictEqual(restored.recommend(`U${u}`, end), model.recommend(`U${u}`, end))
    // both go on learning the same way
    for (let i = 0; i < 300; i++) {
      const user = `U${(i * 7) % 23}`
      const product = productIds[(i * 13) % 60]!
      const kind = i % 11 === 0 ? "purchase" : i % 4 === 0 ? "add_to_cart" : "view"
      model.observe(user, product, kind, end + i * 30_000)
      restored.observe(user, product, kind, end + i * 30_000)
    }
    const later = end + 300 * 30_000
    for (let u = 0; u < 23; u++) assert.deepStrictEqual(restored.recommend(`U${u}`, later), model.recommend(`U${u}`, later))
    assert.deepStrictEqual(restored.popular(later), model.popular(later))
    assert.deepStrictEqual(restored.snapshot(), model.snapshot())
  })

  it("restore refuses what is not a snapshot", () => {
    assert.throws(() => RecommenderModel.restore(catalog, { version: 99 }))
    assert.throws(() => RecommenderModel.restore(catalog, null))
  })

  it("evict forgets users idle longer than the limit, and only those", () => {
    const model = new RecommenderModel(catalog, { userIdleMs: 2 * day })
    model.observe("old", "P01", "view", t0)
    model.observe("recent", "P02", "view", t0 + 3 * day)
    assert.strictEqual(model.evict(t0 + 2 * day), 0)
    assert.strictEqual(model.evict(t0 + 3 * day), 1)
    assert.isUndefined(model.recommend("old", t0 + 3 * day))
    assert.isDefined(model.recommend("recent", t0 + 3 * day))
    assert.strictEqual(model.stats().users, 1)
    assert.strictEqual(defaultLimits.boughtWindowMs, day)
    // a new user takes the freed place with nothing of the old one's
    model.observe("new", "P03", "view", t0 + 3 * day)
    assert.deepStrictEqual(model.userSizes("new"), { recent: 1, categories: 1, brands: 1, bought: 0 })
    assert.notInclude(ids(model.recommend("new", t0 + 3 * day)).slice(0, 1), "P01")
    assert.strictEqual(ids(model.recommend("new", t0 + 3 * day))[0], "P03")
  })

  it("late events count (less than fresh ones) and do not break the lists", () => {
    const model = new RecommenderModel(catalog)
    model.observe("U1", "P10", "view", t0 + hour)
    model.observe("U1", "P20", "view", t0) // an hour late
    const list = ids(model.recommend("U1", t0 + hour))
    assert.includeMembers(list, ["P10", "P20"])
    assert.isBelow(list.indexOf("P10"), list.indexOf("P20"))
  })

  it("ignores events of products beyond the cap and non-finite times", () => {
    const model = new RecommenderModel(() => undefined, { maxProducts: 1 })
    model.observe("U1", "X", "view", Number.NaN)
    assert.isUndefined(model.recommend("U1", t0))
    model.observe("U1", "A", "view", t0)
    model.observe("U1", "B", "view", t0)
    assert.deepStrictEqual(ids(model.recommend("U1", t0)), ["A"])
  })
})
