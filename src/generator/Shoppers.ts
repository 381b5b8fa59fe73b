/**
 * A deterministic simulator of the store's shoppers: one call, one Kafka message
 * (a click or a checkout), at whatever event time the caller gives it.
 *
 * A pool of concurrent sessions is advanced in random order, so the events of
 * different users interleave as they do on a real site. A session is one visit:
 * the user arrives from a source (Google, Facebook, …), looks at products drawn
 * from their hidden taste (see Tastes.ts), puts some in the cart (mostly
 * products it looked at again, sometimes a "similar item": one it had not seen
 * in this visit, of the category of one it had, drawn from its taste), and when the
 * visit ends may check out products from it — one checkout per later call, so a
 * checkout's event time is never before the clicks that led to it (given a
 * clock that does not run backwards).
 *
 * Speed: faker runs only at construction (user agents, street names); each
 * message costs a few draws of a small PRNG and a few string joins (see the
 * comments on the JSON fragments and the timestamp formatter).
 *
 * Formats: `engine` (default) is the full event of SPEC §1 with ISO-8601 UTC
 * timestamps. `flink` is what the Flink version's Python generator sent: clicks
 * without `product_id` and `event_type`, naive timestamps with milliseconds
 * (`YYYY-MM-DD HH:MM:SS.fff`, here in UTC), integer ids as JSON integers.
 *
 * @since 0.1.0
 */
import { base, en, Faker } from "@faker-js/faker"
import type { ProductRow, UserRow } from "./Catalog.ts"
import { deriveSeed, makeRandom, mix32, type Random } from "./Random.ts"
import { makePopularity, makeTastes, weightsAt } from "./Tastes.ts"

/**
 * One message for Kafka (or a replay file): the topic, the key (the user id) and
 * the JSON value.
 *
 * @since 0.1.0
 * @category models
 */
export interface GeneratedMessage {
  readonly topic: "clicks" | "checkouts"
  readonly key: string
  readonly value: string
  readonly eventTime: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SimulatorOptions {
  readonly seed: number
  readonly users: ReadonlyArray<UserRow>
  readonly products: ReadonlyArray<ProductRow>
  /** `engine` (default): SPEC §1 events; `flink`: the Python generator's shape */
  readonly format?: "engine" | "flink"
  /** how many visits are under way at once (default 200) */
  readonly activeSessions?: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Simulator {
  /** the next message; event time = the given time in epoch ms (the caller owns the clock) */
  readonly next: (eventTimeMs: number) => GeneratedMessage
  /** how many messages `next` has returned */
  readonly emitted: number
  /** how many visits have started (the pool's first ones included) */
  readonly visits: number
}

/**
 * Where visits come from. The Flink version's generator drew from exactly this
 * list, duplicates included, which is how it weighted the sources.
 *
 * @since 0.1.0
 * @category models
 */
export const clickSources: ReadonlyArray<string> = [
  "Unknown",
  "Facebook",
  "Unknown",
  "Twitter",
  "Tiktok",
  "Gmail",
  "Unknown",
  "Google",
  "Unknown",
  "Youtube",
  "Unknown",
  "Tiktok",
  "Facebook",
  "Google"
]

/**
 * The Flink version's payment methods.
 *
 * @since 0.1.0
 * @category models
 */
export const paymentMethods: ReadonlyArray<string> = [
  "Visa",
  "MasterCard",
  "Stripe",
  "Payment on Delivery",
  "Paypal",
  "Alipay",
  "Skrill"
]

/**
 * The Flink version's payment failure reasons (`payment_description` of a
 * failed checkout; a successful one says `None`).
 *
 * @since 0.1.0
 * @category models
 */
export const paymentFailureReasons: ReadonlyArray<string> = [
  "Insufficient Fund",
  "Invalid Payment Details",
  "Network Connectivity Issues",
  "Payment Gateway Issues",
  "Incorrect Billing Address",
  "Card Expired"
]

// The shape of a visit. Tuned so that a long run has about one checkout per
// eight clicks (see the simulator tests).
const behaviour = {
  /** a visit opens with a landing-page click not tied to a product */
  landingClick: 0.2,
  minClicks: 2,
  maxClicks: 14,
  /** a later click goes back to a product already seen in this visit */
  revisit: 0.45,
  /** a revisit of a product not yet in the cart puts it there */
  addToCart: 0.6,
  /**
   * instead of a revisit, a "similar item" goes straight into the cart: a product not
   * seen in this visit, of the category of one that was, drawn from the shopper's taste
   */
  similarToCart: 0.2,
  /** a first look at a product is a `view` (the rest are `click`s) */
  firstLookIsView: 0.6,
  /** each product in the cart is bought at the end of the visit */
  buyFromCart: 0.65,
  /** with nothing bought from the cart, one product seen is bought straight away */
  buySeen: 0.2,
  /** an extra purchase of a product never clicked (a link from an email, say) */
  buyUnseen: 0.03,
  paymentSuccess: 0.85,
  /** share of checkouts with a discount; discounts are 0.05–0.49 */
  discounted: 0.7
} as const

// purposes of the derived random streams (see Random.deriveSeed)
const eventStream = 10
const poolStream = 11
const userStream = 12

/** One visit under way. Mutable on purpose: the pool reuses these objects. */
interface Session {
  user: number
  /** the visit's fixed JSON members: user_id, source, user_agent, ip_address */
  visitorJson: string
  clicksLeft: number
  clicksDone: number
  seen: Array<number>
  cart: Array<number>
  toBuy: Array<number>
}

/** Draws a product index for a user: a favourite category, then by popularity. */
interface ProductPicker {
  /** a product for `user` at event time `eventTimeMs` (the favourites' weights drift) */
  readonly pick: (user: number, eventTimeMs: number) => number
  /** a product of the category of `like`, as `user` would pick it there */
  readonly similar: (user: number, like: number) => number
}

interface PickTable {
  readonly members: Int32Array
  readonly cumulative: Float64Array
}

const hourMs = 3_600_000

const makeProductPicker = (
  seed: number,
  random: Random,
  users: ReadonlyArray<UserRow>,
  products: ReadonlyArray<ProductRow>
): ProductPicker => {
  const popularity = makePopularity(seed, products)
  // per category, and per category and brand: product indices with cumulative popularity, for a binary search
  const tableOf = (indices: ReadonlyArray<number>): PickTable => {
    const cumulative = new Float64Array(indices.length)
    let total = 0
    indices.forEach((productIndex, i) => {
      total += popularity[productIndex]!
      cumulative[i] = total
    })
    return { members: Int32Array.from(indices), cumulative }
  }
  const byCategory = new Map<string, PickTable>()
  const byBrand = new Map<string, PickTable>() // key: category + "\n" + brand
  for (const category of new Set(products.map((product) => product.category))) {
    const indices = products.flatMap((product, index) => (product.category === category ? [index] : []))
    byCategory.set(category, tableOf(indices))
    for (const brand of new Set(indices.map((index) => products[index]!.brand))) {
      byBrand.set(`${category}\n${brand}`, tableOf(indices.filter((index) => products[index]!.brand === brand)))
    }
  }
  const categoryTables = [...byCategory.values()]
  const pickIn = (table: PickTable): number => {
    const target = random.next() * table.cumulative[table.cumulative.length - 1]!
    let lo = 0
    let hi = table.cumulative.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (table.cumulative[mid]! > target) hi = mid
      else lo = mid + 1
    }
    return table.members[lo]!
  }
  // per user: the favourite categories' tables (and favourite brands' tables), and the
  // cumulative weights of the hour they were last computed for (the weights drift slowly)
  const tastes = makeTastes(seed, users, products).map((taste) => ({
    taste,
    tables: taste.favourites.map((favourite) => byCategory.get(favourite.category)!),
    brandTables: taste.favourites.map((favourite) => byBrand.get(`${favourite.category}\n${favourite.brand}`)!),
    categories: taste.favourites.map((favourite) => favourite.category),
    cumulative: new Float64Array(taste.favourites.length),
    hour: Number.NaN
  }))
  const categoryOf = products.map((product) => product.category)
  const onTaste = (t: (typeof tastes)[number], i: number): number =>
    random.next() < t.taste.brandLoyalty ? pickIn(t.brandTables[i]!) : pickIn(t.tables[i]!)
  return {
    pick: (user, eventTimeMs) => {
      const t = tastes[user]!
      if (random.next() < t.taste.curiosity) return pickIn(random.pick(categoryTables))
      const hour = Math.floor(eventTimeMs / hourMs)
      if (hour !== t.hour) {
        t.hour = hour
        let total = 0
        weightsAt(t.taste, hour * hourMs).forEach((weight, i) => {
          t.cumulative[i] = total += weight
        })
      }
      const roll = random.next()
      let i = 0
      while (i < t.cumulative.length - 1 && roll >= t.cumulative[i]!) i++
      return onTaste(t, i)
    },
    similar: (user, like) => {
      const t = tastes[user]!
      const category = categoryOf[like]!
      const i = t.categories.indexOf(category)
      return i === -1 ? pickIn(byCategory.get(category)!) : onTaste(t, i)
    }
  }
}

/** Values for the user agent and street name pools, drawn once with faker. */
const makeFakerPools = (seed: number) => {
  const faker = new Faker({ locale: [en, base] })
  faker.seed(deriveSeed(seed, poolStream))
  // shoppers are people: leave out the crawler agents faker sometimes returns
  const userAgents = Array.from({ length: 400 }, () => faker.internet.userAgent()).filter(
    (agent) => !/bot|crawler|spider/i.test(agent)
  )
  const streets = Array.from({ length: 500 }, () => faker.location.street())
  return { userAgents, streets }
}

// Ids that are canonical decimal integers go out as JSON integers in the `flink`
// format, as the Python generator's pandas-read ids did; anything else stays a string.
const flinkId = (id: string): string | number => (/^(0|[1-9][0-9]{0,14})$/.test(id) ? Number(id) : id)

const round2 = (value: number): number => Math.round(value * 100) / 100

/**
 * Formats event times as `YYYY-MM-DDTHH:MM:SS.fffZ` (or, for the flink format,
 * `YYYY-MM-DD HH:MM:SS.fff`), always in UTC. `toISOString` is the slowest step
 * of a message, and consecutive messages mostly fall in the same second, so the
 * part up to the second is cached and only the milliseconds are appended.
 */
const makeTimestampFormatter = (flink: boolean): (eventTimeMs: number) => string => {
  let cachedSecond = Number.NaN
  let prefix = ""
  return (eventTimeMs) => {
    const ms = Math.floor(eventTimeMs)
    const second = Math.floor(ms / 1000)
    if (second !== cachedSecond) {
      cachedSecond = second
      const iso = new Date(second * 1000).toISOString() // YYYY-MM-DDTHH:MM:SS.000Z
      prefix = flink ? `${iso.slice(0, 10)} ${iso.slice(11, 20)}` : iso.slice(0, 20)
    }
    const millis = ms - second * 1000
    const padded = millis < 10 ? `00${millis}` : millis < 100 ? `0${millis}` : `${millis}`
    return flink ? prefix + padded : `${prefix}${padded}Z`
  }
}

/**
 * A simulator over the given catalog; the same options give the same messages
 * for the same sequence of event times.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSimulator = (options: SimulatorOptions): Simulator => {
  const { seed, users, products } = options
  if (users.length === 0 || products.length === 0) {
    throw new Error("makeSimulator needs at least one user and one product")
  }
  const flink = options.format === "flink"
  const random = makeRandom(deriveSeed(seed, eventStream))
  const picker = makeProductPicker(seed, random, users, products)
  const { streets, userAgents } = makeFakerPools(seed)

  // A user's device and home are stable across visits: derive them from a hash
  // of (seed, user) rather than from the event stream.
  const userSeed = deriveSeed(seed, userStream)
  const userHash = (user: number, salt: number) => mix32(deriveSeed(userSeed, user) ^ salt)
  const userAgentOf = (user: number) => userAgents[userHash(user, 1) % userAgents.length]!
  const ipOf = (user: number) => {
    const h = userHash(user, 2)
    return `${(h >>> 24) % 223 + 1}.${(h >>> 16) & 255}.${(h >>> 8) & 255}.${(h & 253) + 1}`
  }
  const shippingAddressOf = (user: number) => {
    const h = userHash(user, 3)
    return `${(h >>> 12) % 9899 + 100} ${streets[h % streets.length]!}, ${users[user]!.location}`
  }

  // JSON is assembled from fragments: every string that can hold arbitrary text
  // (ids, user agents, addresses, list values) goes through JSON.stringify once
  // when it enters a fragment, so the concatenation is always valid JSON, and
  // the per-message cost is a few string joins instead of a JSON.stringify.
  const json = (value: string | number | null): string => JSON.stringify(value)
  const userIds = users.map((user) => user.user_id)
  const userIdJson = users.map((user) => json(flink ? flinkId(user.user_id) : user.user_id))
  const productIdJson = products.map((product) => json(flink ? flinkId(product.product_id) : product.product_id))
  const sourceJson = new Map(clickSources.map((source) => [source, json(source)]))
  const paymentMethodJson = paymentMethods.map(json)
  const failureJson = paymentFailureReasons.map((reason) => `"payment_status":"Failed","payment_description":${json(reason)}`)
  const successJson = `"payment_status":"Success","payment_description":"None"`
  const clickIdPrefix = json(`c-${seed}-`).slice(0, -1)
  const checkoutIdPrefix = json(`k-${seed}-`).slice(0, -1)
  const formatTime = makeTimestampFormatter(flink)

  let visits = 0
  const startVisit = (session: Session): void => {
    visits++
    const user = random.int(users.length)
    session.user = user
    session.visitorJson = `"user_id":${userIdJson[user]!},"source":${sourceJson.get(random.pick(clickSources))!},` +
      `"user_agent":${json(userAgentOf(user))},"ip_address":${json(ipOf(user))}`
    session.clicksLeft = random.between(behaviour.minClicks, behaviour.maxClicks)
    session.clicksDone = 0
    session.seen.length = 0
    session.cart.length = 0
    session.toBuy.length = 0
  }

  const newSession = (): Session => {
    const session: Session = { user: 0, visitorJson: "", clicksLeft: 0, clicksDone: 0, seen: [], cart: [], toBuy: [] }
    startVisit(session)
    return session
  }

  const poolSize = Math.max(1, Math.floor(options.activeSessions ?? 200) || 1)
  const pool = Array.from({ length: poolSize }, newSession)

  const decidePurchases = (session: Session): void => {
    for (const product of session.cart) {
      if (random.chance(behaviour.buyFromCart)) session.toBuy.push(product)
    }
    if (session.toBuy.length === 0 && session.seen.length > 0 && random.chance(behaviour.buySeen)) {
      session.toBuy.push(random.pick(session.seen))
    }
    if (random.chance(behaviour.buyUnseen)) session.toBuy.push(picker.pick(session.user, lastEventTime))
  }

  let clicks = 0
  let checkouts = 0
  let emitted = 0
  let lastEventTime = 0

  const click = (session: Session, eventTimeMs: number): GeneratedMessage => {
    let product = -1
    let eventType = "click"
    const landing = session.clicksDone === 0 && random.chance(behaviour.landingClick)
    if (!landing) {
      if (session.seen.length > 0 && random.chance(behaviour.revisit)) {
        const similar = random.chance(behaviour.similarToCart)
          ? picker.similar(session.user, random.pick(session.seen))
          : -1
        if (similar !== -1 && !session.seen.includes(similar)) {
          product = similar
          eventType = "add_to_cart"
          session.seen.push(product)
          session.cart.push(product)
        } else {
          product = random.pick(session.seen)
          if (!session.cart.includes(product) && random.chance(behaviour.addToCart)) {
            eventType = "add_to_cart"
            session.cart.push(product)
          }
        }
      } else {
        product = picker.pick(session.user, eventTimeMs)
        eventType = random.chance(behaviour.firstLookIsView) ? "view" : "click"
        if (!session.seen.includes(product)) session.seen.push(product)
      }
    }
    clicks++
    // the flink format has no product_id and event_type, like the Python generator
    const productJson = flink
      ? ""
      : `"product_id":${product === -1 ? "null" : productIdJson[product]!},"event_type":"${eventType}",`
    const value = `{"click_id":${clickIdPrefix}${clicks}",${session.visitorJson},${productJson}` +
      `"click_timestamp":"${formatTime(eventTimeMs)}"}`
    return { topic: "clicks", key: userIds[session.user]!, value, eventTime: eventTimeMs }
  }

  const checkout = (session: Session, product: number, eventTimeMs: number): GeneratedMessage => {
    checkouts++
    const roll = random.next()
    const quantity = roll < 0.7 ? 1 : roll < 0.92 ? 2 : 3
    const shippingCost = round2(1 + random.next() * 9)
    const discount = random.chance(behaviour.discounted) ? random.between(5, 49) / 100 : 0
    const paymentMethod = random.pick(paymentMethodJson)
    const payment = random.chance(behaviour.paymentSuccess) ? successJson : random.pick(failureJson)
    const value = `{"checkout_id":${checkoutIdPrefix}${checkouts}","user_id":${userIdJson[session.user]!},` +
      `"product_id":${productIdJson[product]!},"quantity":${quantity},"shipping_cost":${shippingCost},` +
      `"discount":${discount},"payment_method":${paymentMethod},${payment},` +
      `"shipping_address":${json(shippingAddressOf(session.user))},"checkout_timestamp":"${formatTime(eventTimeMs)}"}`
    return { topic: "checkouts", key: userIds[session.user]!, value, eventTime: eventTimeMs }
  }

  const next = (eventTimeMs: number): GeneratedMessage => {
    const session = pool[random.int(pool.length)]!
    emitted++
    lastEventTime = eventTimeMs
    const product = session.toBuy.pop()
    if (product !== undefined) {
      const message = checkout(session, product, eventTimeMs)
      if (session.toBuy.length === 0) startVisit(session)
      return message
    }
    const message = click(session, eventTimeMs)
    session.clicksLeft--
    session.clicksDone++
    if (session.clicksLeft === 0) {
      decidePurchases(session)
      // nothing to buy: the slot starts the next visit straight away
      if (session.toBuy.length === 0) startVisit(session)
    }
    return message
  }

  return {
    next,
    get emitted() {
      return emitted
    },
    get visits() {
      return visits
    }
  }
}
