import { assert, describe, it } from "@effect/vitest"
import { makeProducts, makeUsers, type ProductRow, type UserRow } from "../../src/generator/Catalog.ts"
import {
  clickSources,
  type GeneratedMessage,
  makeSimulator,
  paymentFailureReasons,
  paymentMethods,
  type SimulatorOptions
} from "../../src/generator/Shoppers.ts"
import { makeTastes } from "../../src/generator/Tastes.ts"

const users = makeUsers(1, 1000)
const products = makeProducts(2, 200)
const start = Date.UTC(2024, 2, 20, 12, 0, 0)

/** `count` messages, one every `stepMs` of event time */
const run = (options: Partial<SimulatorOptions> & { readonly seed: number }, count: number, stepMs = 7) => {
  const simulator = makeSimulator({ users, products, ...options })
  return Array.from({ length: count }, (_, i) => simulator.next(start + i * stepMs))
}

const isoMillisZ = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/
const naiveMillis = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$/
const hasAtMost2Decimals = (x: number) => Math.abs(Math.round(x * 100) - x * 100) < 1e-6

interface Click {
  readonly click_id: string
  readonly user_id: string
  readonly product_id: string | null
  readonly source: string
  readonly event_type: "click" | "view" | "add_to_cart"
  readonly user_agent: string
  readonly ip_address: string
  readonly click_timestamp: string
}

interface Checkout {
  readonly checkout_id: string
  readonly user_id: string
  readonly product_id: string
  readonly quantity: number
  readonly shipping_cost: number
  readonly discount: number
  readonly payment_method: string
  readonly payment_status: "Success" | "Failed"
  readonly payment_description: string
  readonly shipping_address: string
  readonly checkout_timestamp: string
}

const clicksOf = (messages: ReadonlyArray<GeneratedMessage>): Array<Click> =>
  messages.filter((m) => m.topic === "clicks").map((m) => JSON.parse(m.value))

const checkoutsOf = (messages: ReadonlyArray<GeneratedMessage>): Array<Checkout> =>
  messages.filter((m) => m.topic === "checkouts").map((m) => JSON.parse(m.value))

describe("Shoppers", () => {
  it("gives the same first 10k messages for the same seed, in both formats", () => {
    assert.deepStrictEqual(run({ seed: 5 }, 10_000), run({ seed: 5 }, 10_000))
    assert.deepStrictEqual(run({ seed: 5, format: "flink" }, 10_000), run({ seed: 5, format: "flink" }, 10_000))
  })

  it("gives different messages for different seeds", () => {
    const a = run({ seed: 5 }, 1000).map((m) => m.value)
    const b = run({ seed: 6 }, 1000).map((m) => m.value)
    assert.isBelow(a.filter((value, i) => value === b[i]).length, 10)
  })

  it("counts what it emitted", () => {
    const simulator = makeSimulator({ seed: 1, users, products })
    for (let i = 0; i < 123; i++) simulator.next(start + i)
    assert.strictEqual(simulator.emitted, 123)
  })

  it("emits clicks with the SPEC §1 fields and types, keyed by user", () => {
    const messages = run({ seed: 8 }, 20_000)
    const productIds = new Set(products.map((p) => p.product_id))
    const userIds = new Set(users.map((u) => u.user_id))
    for (const message of messages.filter((m) => m.topic === "clicks")) {
      const click: Click = JSON.parse(message.value)
      assert.deepStrictEqual(Object.keys(click).sort(), [
        "click_id",
        "click_timestamp",
        "event_type",
        "ip_address",
        "product_id",
        "source",
        "user_agent",
        "user_id"
      ])
      assert.strictEqual(message.key, click.user_id)
      assert.isTrue(userIds.has(click.user_id))
      assert.isTrue(click.product_id === null || productIds.has(click.product_id))
      assert.include(clickSources, click.source)
      assert.include(["click", "view", "add_to_cart"], click.event_type)
      assert.isTrue(click.product_id !== null || click.event_type === "click")
      assert.isString(click.user_agent)
      assert.match(click.ip_address, /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/)
      assert.match(click.click_timestamp, isoMillisZ)
      assert.strictEqual(click.click_timestamp, new Date(message.eventTime).toISOString())
    }
    const clicks = clicksOf(messages)
    assert.strictEqual(new Set(clicks.map((c) => c.click_id)).size, clicks.length)
    const types = new Set(clicks.map((c) => c.event_type))
    assert.strictEqual(types.size, 3)
    const visits = clicks.filter((c) => c.product_id === null).length
    assert.isTrue(visits > 0 && visits < clicks.length * 0.1)
  })

  it("emits checkouts with the SPEC §1 fields and types, for existing users and products", () => {
    const messages = run({ seed: 9 }, 40_000)
    const productIds = new Set(products.map((p) => p.product_id))
    const userIds = new Set(users.map((u) => u.user_id))
    for (const message of messages.filter((m) => m.topic === "checkouts")) {
      const checkout: Checkout = JSON.parse(message.value)
      assert.deepStrictEqual(Object.keys(checkout), [
        "checkout_id",
        "user_id",
        "product_id",
        "quantity",
        "shipping_cost",
        "discount",
        "payment_method",
        "payment_status",
        "payment_description",
        "shipping_address",
        "checkout_timestamp"
      ])
      assert.strictEqual(message.key, checkout.user_id)
      assert.isTrue(userIds.has(checkout.user_id))
      assert.isTrue(productIds.has(checkout.product_id))
      assert.isTrue(Number.isInteger(checkout.quantity) && checkout.quantity >= 1 && checkout.quantity <= 3)
      assert.isTrue(checkout.shipping_cost >= 0 && hasAtMost2Decimals(checkout.shipping_cost))
      assert.isTrue(checkout.discount >= 0 && checkout.discount < 0.5 && hasAtMost2Decimals(checkout.discount))
      assert.include(paymentMethods, checkout.payment_method)
      if (checkout.payment_status === "Success") {
        assert.strictEqual(checkout.payment_description, "None")
      } else {
        assert.strictEqual(checkout.payment_status, "Failed")
        assert.include(paymentFailureReasons, checkout.payment_description)
      }
      assert.isAbove(checkout.shipping_address.length, 10)
      assert.match(checkout.checkout_timestamp, isoMillisZ)
      assert.strictEqual(checkout.checkout_timestamp, new Date(message.eventTime).toISOString())
    }
    const checkouts = checkoutsOf(messages)
    assert.strictEqual(new Set(checkouts.map((k) => k.checkout_id)).size, checkouts.length)
    const clicksPerCheckout = (messages.length - checkouts.length) / checkouts.length
    assert.isTrue(clicksPerCheckout >= 6 && clicksPerCheckout <= 10, `${clicksPerCheckout} clicks per checkout`)
    const success = checkouts.filter((k) => k.payment_status === "Success").length / checkouts.length
    assert.isTrue(success > 0.8 && success < 0.9, `success rate ${success}`)
    assert.strictEqual(new Set(checkouts.map((k) => k.payment_description)).size, paymentFailureReasons.length + 1)
  })

  it("checks out products the user clicked earlier, mostly within the hour", () => {
    const messages = run({ seed: 10 }, 50_000, 20)
    const clickedAt = new Map<string, number>() // user|product -> first click time
    let checkouts = 0
    let clickedBefore = 0
    let withinAnHour = 0
    for (const message of messages) {
      if (message.topic === "clicks") {
        const click: Click = JSON.parse(message.value)
        const key = `${click.user_id}|${click.product_id}`
        if (!clickedAt.has(key)) clickedAt.set(key, message.eventTime)
      } else {
        const checkout: Checkout = JSON.parse(message.value)
        checkouts++
        const first = clickedAt.get(`${checkout.user_id}|${checkout.product_id}`)
        if (first !== undefined && first < message.eventTime) {
          clickedBefore++
          if (message.eventTime - first <= 3_600_000) withinAnHour++
        }
      }
    }
    assert.isAbove(checkouts, 3000)
    assert.isAbove(clickedBefore / checkouts, 0.9)
    assert.isAbove(withinAnHour / checkouts, 0.9)
  })

  it("interleaves the sessions of many users", () => {
    const messages = run({ seed: 11 }, 1000)
    assert.isAbove(new Set(messages.map((m) => m.key)).size, 150)
    const switches = messages.filter((m, i) => i > 0 && m.key !== messages[i - 1]!.key).length
    assert.isAbove(switches, 900)
  })

  it("formats any event time exactly, even when the caller's clock jumps around", () => {
    const simulator = makeSimulator({ seed: 12, users, products })
    const times = [0, 999, 1000, 1001, start + 59_999, start + 60_000, start - 1, start + 86_399_999, start + 5]
    for (const time of times) {
      const message = simulator.next(time)
      const event = JSON.parse(message.value)
      assert.strictEqual(event.click_timestamp ?? event.checkout_timestamp, new Date(time).toISOString())
      assert.strictEqual(message.eventTime, time)
    }
  })

  it("flink format: the Python generator's shapes, the same events underneath", () => {
    const engine = run({ seed: 13 }, 5000)
    const flink = run({ seed: 13, format: "flink" }, 5000)
    flink.forEach((message, i) => {
      const same = engine[i]!
      assert.strictEqual(message.topic, same.topic)
      assert.strictEqual(message.key, same.key)
      const event = JSON.parse(message.value)
      const full = JSON.parse(same.value)
      assert.strictEqual(event.user_id, Number(message.key)) // integer ids, as pandas read them
      if (message.topic === "clicks") {
        assert.deepStrictEqual(Object.keys(event), [
          "click_id",
          "user_id",
          "source",
          "user_agent",
          "ip_address",
          "click_timestamp"
        ])
        assert.match(event.click_timestamp, naiveMillis)
        assert.strictEqual(event.click_timestamp.replace(" ", "T") + "Z", full.click_timestamp)
        assert.strictEqual(event.click_id, full.click_id)
        assert.strictEqual(event.source, full.source)
      } else {
        assert.match(event.checkout_timestamp, naiveMillis)
        assert.strictEqual(event.product_id, Number(full.product_id))
        assert.deepStrictEqual(
          { ...event, user_id: full.user_id, product_id: full.product_id, checkout_timestamp: full.checkout_timestamp },
          full
        )
      }
    })
  })

  it("flink format keeps ids that are not plain integers as strings", () => {
    const named: ReadonlyArray<UserRow> = users.slice(0, 20).map((u, i) => ({ ...u, user_id: `U${String(i).padStart(4, "0")}` }))
    const zeroPadded: ReadonlyArray<ProductRow> = products.map((p, i) => ({ ...p, product_id: `00${i}` }))
    const messages = run({ seed: 14, format: "flink", users: named, products: zeroPadded }, 3000)
    for (const message of messages) {
      const event = JSON.parse(message.value)
      assert.strictEqual(event.user_id, message.key)
      if (message.topic === "checkouts") assert.match(event.product_id, /^00\d+$/)
    }
  })

  it("shoppers' hidden tastes show in their clicks", () => {
    const seed = 15
    const tastes = makeTastes(seed, users, products)
    const favouritesOf = new Map(tastes.map((t) => [t.user_id, new Set(t.favourites.map((f) => f.category))]))
    const categoryOf = new Map(products.map((p) => [p.product_id, p.category]))
    const perUser = new Map<string, { onTaste: number; all: number }>()
    for (const click of clicksOf(run({ seed }, 300_000))) {
      if (click.product_id === null) continue
      const stats = perUser.get(click.user_id) ?? { onTaste: 0, all: 0 }
      stats.all++
      if (favouritesOf.get(click.user_id)!.has(categoryOf.get(click.product_id)!)) stats.onTaste++
      perUser.set(click.user_id, stats)
    }
    const judged = [...perUser.values()].filter((s) => s.all >= 50)
    assert.isAbove(judged.length, 900)
    const mostlyOnTaste = judged.filter((s) => s.onTaste / s.all > 0.5).length
    assert.isAbove(mostlyOnTaste / judged.length, 0.97)
    const overall = judged.reduce((sum, s) => sum + s.onTaste, 0) / judged.reduce((sum, s) => sum + s.all, 0)
    assert.isAbove(overall, 0.8)
  })

  it("tastes make the next add-to-cart predictable beyond plain popularity", () => {
    // hit-rate@10 on the second half's add-to-carts: the most clicked products of the
    // user's favourite categories vs the most clicked products overall (first half)
    const seed = 16
    const tastes = new Map(makeTastes(seed, users, products).map((t) => [t.user_id, t.favourites]))
    const clicks = clicksOf(run({ seed }, 200_000)).filter((c) => c.product_id !== null)
    const half = Math.floor(clicks.length / 2)
    const counts = new Map<string, number>()
    for (const click of clicks.slice(0, half)) counts.set(click.product_id!, (counts.get(click.product_id!) ?? 0) + 1)
    const ranked = products.map((p) => p.product_id).sort((a, b) => (counts.get(b) ?? 0) - (counts.get(a) ?? 0))
    const categoryOf = new Map(products.map((p) => [p.product_id, p.category]))
    const popular = new Set(ranked.slice(0, 10))
    const personal = new Map(
      [...tastes].map(([user, favourites]) => {
        const liked = new Set(favourites.map((f) => f.category))
        return [user, new Set(ranked.filter((id) => liked.has(categoryOf.get(id)!)).slice(0, 10))]
      })
    )
    const carts = clicks.slice(half).filter((c) => c.event_type === "add_to_cart")
    const hitRate = (hit: (c: Click) => boolean) => carts.filter(hit).length / carts.length
    const baseline = hitRate((c) => popular.has(c.product_id!))
    const tasteAware = hitRate((c) => personal.get(c.user_id)!.has(c.product_id!))
    assert.isAbove(tasteAware, baseline * 2, `taste-aware ${tasteAware} vs popular ${baseline}`)
  })
})
