/**
 * `shop.checkout_attribution` rows for the export's tests, inserted directly: varied
 * (paid or not, attributed or not, a known product or not), with microsecond times.
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../../src/sinks/Database.ts"

export interface CheckoutRow {
  readonly checkout_id: string
  readonly user_id: string
  readonly product_id: string
  readonly quantity: number
  readonly shipping_cost: string
  readonly discount: string
  readonly payment_method: string
  readonly payment_status: "Success" | "Failed"
  readonly payment_description: string
  readonly shipping_address: string | null
  readonly checkout_timestamp: string
  readonly gender: string | null
  readonly category: string | null
  readonly product_name: string | null
  readonly brand: string | null
  readonly total_amount: string | null
  readonly profit: string | null
  readonly click_id: string | null
  readonly source: string | null
  readonly click_timestamp: string | null
  readonly is_late: boolean
  readonly written_at: string
}

/** microseconds since the epoch → ISO-8601 with 6 fractional digits */
export const isoMicros = (us: bigint): string => {
  const ms = us / 1000n
  const rest = us % 1000n
  return new Date(Number(ms)).toISOString().replace("Z", `${String(rest).padStart(3, "0")}Z`)
}
/** microseconds since the epoch of an ISO string (to the millisecond) */
export const micros = (iso: string): bigint => BigInt(Date.parse(iso)) * 1000n
/** exact µs of an ISO string written YYYY-MM-DDTHH:MM:SS.ffffffZ */
export const usOf = (iso: string): string => String(micros(`${iso.slice(0, 23)}Z`) + BigInt(iso.slice(23, 26)))

export const cents = (s: string | null): number => s === null ? 0 : Math.round(Number(s) * 100)
export const money = (c: number): string => (c / 100).toFixed(2)

/** A checkout at `at` (ISO µs), varied by `i`: paid or not, attributed or not, with or without a product. */
export const checkout = (id: string, at: string, i: number): CheckoutRow => {
  const paid = i % 3 !== 0
  const known = i % 5 !== 0
  const attributed = i % 2 === 0
  return {
    checkout_id: id, user_id: `u${i % 7}`, product_id: `p${i % 11}`, quantity: 1 + (i % 4),
    shipping_cost: money(99 + i), discount: i % 4 === 0 ? "0.15" : "0",
    payment_method: i % 2 ? "Visa" : "PayPal", payment_status: paid ? "Success" : "Failed",
    payment_description: paid ? "None" : "Insufficient funds", shipping_address: i % 6 === 0 ? null : `${i} Main St, 'quoted' "twice"`,
    checkout_timestamp: at, gender: known ? (i % 2 ? "F" : "M") : null, category: known ? "Shoes" : null,
    product_name: known ? `Product ${i}` : null, brand: known ? "Acme" : null,
    total_amount: known ? money(1000 + 137 * i) : null, profit: known ? money(100 + 13 * i) : null,
    click_id: attributed ? `c${i}` : null, source: attributed ? "Google" : null,
    click_timestamp: attributed ? isoMicros(micros(at) - 60_000_000n) : null,
    is_late: i % 9 === 0, written_at: isoMicros(micros(at) + 20_000_123n)
  }
}

type NonEmpty = readonly [Record<string, unknown>, ...Array<Record<string, unknown>>]

/** Inserts `rows` into `shop.checkout_attribution` of the (migrated) database at `url`. */
export const insert = (url: string, rows: ReadonlyArray<CheckoutRow>) =>
  Effect.runPromise(Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    for (let i = 0; i < rows.length; i += 500) {
      yield* sql`INSERT INTO shop.checkout_attribution ${sql.insert(rows.slice(i, i + 500) as unknown as NonEmpty)}`
    }
  }).pipe(Effect.provide(Database.clientLayer(url, 1)), Effect.scoped))

/** Runs the migrations on the database at `url`. */
export const migrate = (url: string) => Effect.runPromise(Effect.void.pipe(Effect.provide(Database.layer(url)), Effect.scoped))
