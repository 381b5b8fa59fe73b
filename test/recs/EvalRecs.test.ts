import { assert, describe, it } from "@effect/vitest"
import { evaluate, feed } from "../../src/commands/EvalRecs.ts"
import type { GeneratedMessage } from "../../src/generator/Shoppers.ts"

const small = { users: 150, sessions: 8 }

describe("eval-recs", () => {
  it("the model's hit rate @10 is more than twice the popular-so-far baseline's", () => {
    for (const seed of [1, 7]) {
      const r = evaluate({ seed, ...small })
      assert.isAbove(r.add_to_carts, 500)
      assert.isAbove(r.hit_rate_at_10, 2 * r.baseline_hit_rate_at_10, JSON.stringify(r))
      assert.isTrue(r.p99_update_ms > 0 && r.p99_update_ms < 5, `p99 ${r.p99_update_ms} ms`)
      assert.strictEqual(r.seed, seed)
      assert.strictEqual(r.users, small.users)
    }
  })

  it("control: a model fed shuffled user ids does not beat the baseline twice over", () => {
    const r = evaluate({ seed: 1, ...small }, { shuffleUsers: true })
    assert.isAtMost(r.hit_rate_at_10, 2 * r.baseline_hit_rate_at_10, JSON.stringify(r))
  })

  it("control: popularity alone (no personal parts) does not either", () => {
    const r = evaluate({ seed: 1, ...small }, {
      weights: { recent: 0, neighbours: 0, category: 0, brand: 0, popular: 1 }
    })
    assert.isAtMost(r.hit_rate_at_10, 2 * r.baseline_hit_rate_at_10, JSON.stringify(r))
  })

  it("the same seed gives the same numbers (timings aside)", () => {
    const a = evaluate({ seed: 3, users: 60, sessions: 4 })
    const b = evaluate({ seed: 3, users: 60, sessions: 4 })
    assert.deepStrictEqual({ ...a, p99_update_ms: 0 }, { ...b, p99_update_ms: 0 })
  })

  it("feed asks before it hands over the add-to-cart, and counts hits of query and baseline", () => {
    const click = (user: string, product: string, type: string, ts: string, n: number): GeneratedMessage => ({
      topic: "clicks",
      key: user,
      eventTime: Date.parse(ts),
      value: JSON.stringify({
        click_id: `c${n}`, user_id: user, product_id: product, source: "Google", event_type: type,
        user_agent: "ua", ip_address: "1.2.3.4", click_timestamp: ts
      })
    })
    const messages = [
      click("U1", "P1", "view", "2026-11-20T10:00:00.000Z", 1),
      click("U2", "P1", "view", "2026-11-20T10:00:01.000Z", 2),
      click("U1", "P2", "add_to_cart", "2026-11-20T10:00:02.000Z", 3),
      click("U2", "P1", "add_to_cart", "2026-11-20T10:00:03.000Z", 4)
    ]
    const consumed: Array<string> = []
    const asked: Array<string> = []
    const counts = feed(messages, (m) => consumed.push(JSON.parse(m.value).click_id), (user) => {
      asked.push(`${user}@${consumed.length}`)
      return [{ productId: "P2" }]
    })
    assert.deepStrictEqual(asked, ["U1@2", "U2@3"])
    assert.deepStrictEqual(counts, { events: 4, addToCarts: 2, hits: 1, baselineHits: 1 })
  })
})
