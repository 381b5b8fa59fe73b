/**
 * Fills a migrated database with a realistic two hours of the engine's output, for the
 * dashboard test: dimensions, a few thousand attributed checkouts (paid and failed, several
 * sources, unattributed ones, unknown users and products, late ones), late events, bad
 * messages and engine-status samples every 5 s.
 *
 * Deterministic (seeded) and relative to `fillNow`, so nothing depends on the wall clock.
 * The test derives its time range from the rows (min/max checkout_timestamp), so this can be
 * replaced by a replay of generated data without touching the test.
 */
import { query } from "../support/TestDatabase.ts"

export const fillNow = new Date("2025-06-01T12:00:00.000Z")

/** mulberry32: a small seeded PRNG. */
const prng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const categories = ["Dresses", "Shoes", "Bags", "Jeans", "T-Shirts", "Jackets", "Accessories", "Sportswear", "Lingerie", "Watches", "Sunglasses"]
const brands = ["Zara", "H&M", "Mango", "Nike", "Adidas", "Levi's", "Gucci", "Uniqlo"]
const sources = ["Google", "Facebook", "Tiktok", "Twitter", "Youtube", "Gmail", "Unknown"]
const failureReasons = ["Insufficient funds", "Card expired", "Bank declined", "Fraud suspected", "3-D Secure failed"]
const paymentMethods = ["Credit card", "Debit card", "PayPal", "Bank transfer", "Apple Pay"]

/** Money as the engine computes it: numeric(12,2), half away from zero, in integer cents. */
const cents = (value: number) => Math.sign(value) * Math.round(Math.abs(value) * 100 + 1e-9)

const insertJson = async (url: string, table: string, columns: string, rows: ReadonlyArray<object>) => {
  const names = columns.split(",").map((column) => column.trim().split(/\s+/)[0]).join(", ")
  for (let i = 0; i < rows.length; i += 2_000) {
    const chunk = rows.slice(i, i + 2_000)
    await query(url, `INSERT INTO ${table} (${names}) SELECT ${names} FROM jsonb_to_recordset($1::jsonb) AS t(${columns})`, [
      JSON.stringify(chunk)
    ])
  }
}

export interface FillSummary {
  readonly checkouts: number
  readonly from: Date
  readonly to: Date
}

export const fillShop = async (url: string, seed = 42): Promise<FillSummary> => {
  const random = prng(seed)
  const pick = <A>(items: ReadonlyArray<A>): A => items[Math.floor(random() * items.length)]!
  const now = fillNow.getTime()
  const start = now - 2 * 3_600_000

  // Dimensions: 60 products (two without a category), 300 users (M/F as the generator writes
  // them, some without a gender).
  const products = Array.from({ length: 60 }, (_, i) => ({
    product_id: `P${String(i + 1).padStart(4, "0")}`,
    name: `Product ${i + 1}`,
    category: i === 59 ? null : i === 58 ? "" : categories[i % categories.length]!,
    brand: pick(brands),
    price: (cents(5 + random() * 295) / 100).toFixed(2),
    commission_rate: (0.05 + Math.floor(random() * 20) / 100).toFixed(6),
    updated_at: new Date(start - 86_400_000).toISOString()
  }))
  const genders = ["F", "M", "F", "M", "F", "M", "Other", null]
  const users = Array.from({ length: 300 }, (_, i) => ({
    user_id: `U${String(i + 1).padStart(5, "0")}`,
    name: `User ${i + 1}`,
    email: `user${i + 1}@example.com`,
    gender: pick(genders),
    birth_day: null,
    location: null,
    phone: null,
    registration_date: null,
    updated_at: new Date(start - 86_400_000).toISOString()
  }))
  await insertJson(url, "shop.products", "product_id text, name text, category text, brand text, price numeric, commission_rate numeric, updated_at timestamptz", products)
  await insertJson(url, "shop.users", "user_id text, name text, email text, gender text, birth_day text, location text, phone text, registration_date text, updated_at timestamptz", users)

  // Checkouts: 3 000 over two hours, busier in the second hour.
  const checkouts: Array<Record<string, unknown>> = []
  for (let i = 0; i < 3_000; i++) {
    const ts = start + Math.floor(Math.sqrt(random()) * (now - start))
    const knownUser = random() > 0.03
    const user = knownUser ? pick(users) : { user_id: `U9${String(i).padStart(5, "0")}`, gender: null }
    const knownProduct = random() > 0.02
    const product = knownProduct ? pick(products) : null
    const productId = product?.product_id ?? `P9${String(i).padStart(4, "0")}`
    const quantity = 1 + Math.floor(random() * 3)
    const shipping = cents(random() < 0.4 ? 0 : 2 + random() * 8)
    const discount = random() < 0.6 ? 0 : Math.floor(random() * 50) / 100
    const failed = random() < 0.12
    const total = product ? cents(Number(product.price) * quantity * (1 - discount)) : null
    const profit = product && total !== null ? cents(((total - shipping) / 100) * Number(product.commission_rate)) : null
    const attributed = random() < 0.78
    const clickTs = ts - Math.floor(random() * 3_600_000)
    checkouts.push({
      checkout_id: `C${String(i + 1).padStart(6, "0")}`,
      user_id: user.user_id,
      product_id: productId,
      quantity,
      shipping_cost: (shipping / 100).toFixed(2),
      discount,
      payment_method: pick(paymentMethods),
      payment_status: failed ? "Failed" : "Success",
      payment_description: failed ? (random() < 0.05 ? null : pick(failureReasons)) : "None",
      shipping_address: `${1 + Math.floor(random() * 200)} Main Street`,
      checkout_timestamp: new Date(ts).toISOString(),
      gender: user.gender,
      category: product?.category ?? null,
      product_name: product?.name ?? null,
      brand: product?.brand ?? null,
      total_amount: total === null ? null : (total / 100).toFixed(2),
      profit: profit === null ? null : (profit / 100).toFixed(2),
      click_id: attributed ? `K${String(i + 1).padStart(7, "0")}` : null,
      source: attributed ? pick(sources) : null,
      click_timestamp: attributed ? new Date(clickTs).toISOString() : null,
      is_late: random() < 0.02,
      written_at: new Date(ts + 15_000).toISOString()
    })
  }
  await insertJson(
    url,
    "shop.checkout_attribution",
    "checkout_id text, user_id text, product_id text, quantity integer, shipping_cost numeric, discount numeric, "
      + "payment_method text, payment_status text, payment_description text, shipping_address text, "
      + "checkout_timestamp timestamptz, gender text, category text, product_name text, brand text, "
      + "total_amount numeric, profit numeric, click_id text, source text, click_timestamp timestamptz, "
      + "is_late boolean, written_at timestamptz",
    checkouts
  )

  // Late events: the late checkouts above, and some late clicks.
  const late = checkouts.filter((c) => c["is_late"]).map((c, i) => ({
    topic: "checkouts",
    event_id: c["checkout_id"],
    user_id: c["user_id"],
    event_timestamp: c["checkout_timestamp"],
    watermark: new Date(Date.parse(c["checkout_timestamp"] as string) + 20_000).toISOString(),
    partition: i % 3,
    offset: 10_000 + i,
    payload: JSON.stringify({ checkout_id: c["checkout_id"] }),
    recorded_at: new Date(Date.parse(c["checkout_timestamp"] as string) + 40_000).toISOString()
  }))
  for (let i = 0; i < 80; i++) {
    const ts = start + Math.floor(random() * (now - start))
    late.push({
      topic: "clicks",
      event_id: `KL${i}`,
      user_id: pick(users).user_id,
      event_timestamp: new Date(ts).toISOString(),
      watermark: new Date(ts + 30_000).toISOString(),
      partition: i % 3,
      offset: 50_000 + i,
      payload: JSON.stringify({ click_id: `KL${i}` }),
      recorded_at: new Date(ts + 45_000).toISOString()
    })
  }
  await insertJson(
    url,
    "shop.late_events",
    "topic text, event_id text, user_id text, event_timestamp timestamptz, watermark timestamptz, \"partition\" integer, \"offset\" bigint, payload text, recorded_at timestamptz",
    late
  )

  // Bad messages.
  const bad = Array.from({ length: 40 }, (_, i) => ({
    source: i % 2 === 0 ? "clicks" : "checkouts",
    partition: i % 3,
    offset: 90_000 + i,
    payload: i % 4 === 0 ? "not json" : "{\"checkout_id\": \"x\", \"quantity\": 0}",
    error: i % 4 === 0 ? "not JSON" : "quantity must be at least 1",
    recorded_at: new Date(start + Math.floor(random() * (now - start))).toISOString()
  }))
  await insertJson(url, "shop.ingest_errors", "source text, \"partition\" integer, \"offset\" bigint, payload text, error text, recorded_at timestamptz", bad)

  // Engine status every 5 s.
  const status: Array<Record<string, unknown>> = []
  let events = 0
  for (let t = start; t <= now; t += 5_000) {
    const rate = 150 + random() * 100
    events += Math.round(rate * 5)
    const delay = 15 + random() * 3 + (t > start + 3_600_000 && t < start + 3_900_000 ? 40 : 0)
    status.push({
      sampled_at: new Date(t).toISOString(),
      watermark: new Date(t - delay * 1000).toISOString(),
      watermark_delay_seconds: delay,
      events_per_second: rate,
      consumer_lag: Math.floor(random() * 500),
      events_total: events,
      late_events_total: Math.floor(events / 2_000),
      ingest_errors_total: Math.floor(events / 5_000),
      rows_written_total: Math.floor(events / 20),
      users_held: 200 + Math.floor(random() * 100),
      clicks_held: 5_000 + Math.floor(random() * 2_000),
      pending_checkouts: Math.floor(random() * 60)
    })
  }
  await insertJson(
    url,
    "shop.engine_status",
    "sampled_at timestamptz, watermark timestamptz, watermark_delay_seconds double precision, events_per_second double precision, "
      + "consumer_lag bigint, events_total bigint, late_events_total bigint, ingest_errors_total bigint, rows_written_total bigint, "
      + "users_held bigint, clicks_held bigint, pending_checkouts bigint",
    status
  )

  const times = checkouts.map((c) => Date.parse(c["checkout_timestamp"] as string))
  return { checkouts: checkouts.length, from: new Date(Math.min(...times)), to: new Date(Math.max(...times)) }
}
