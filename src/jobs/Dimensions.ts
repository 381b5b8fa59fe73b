/**
 * The users and products dimensions, cached in memory for the lookup join (SPEC §4) and
 * refreshed from PostgreSQL in the background, so rows changed while the engine runs (a
 * `load-dims`, a manual UPDATE) are used within `refreshMs`. Lookups are synchronous map reads
 * on the hot path; only changed rows (by `updated_at`) travel on a refresh.
 */
import { Context, Effect, Layer, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"

export interface UserDim {
  readonly user_id: string
  readonly gender: string | null
}

export interface ProductDim {
  readonly product_id: string
  readonly name: string | null
  readonly category: string | null
  readonly brand: string | null
  /** decimal text, e.g. "19.99" */
  readonly price: string | null
  readonly commission_rate: string | null
}

export class Dimensions extends Context.Service<Dimensions, {
  readonly user: (userId: string) => UserDim | undefined
  readonly product: (productId: string) => ProductDim | undefined
  /** re-reads the rows changed since the last refresh */
  readonly refresh: Effect.Effect<void, SqlError>
  readonly size: () => { readonly users: number; readonly products: number }
}>()("insights/jobs/Dimensions") {}

export const make = (refreshMs: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const users = new Map<string, UserDim>()
    const products = new Map<string, ProductDim>()
    let usersSince = "-infinity"
    let productsSince = "-infinity"

    const refresh = Effect.gen(function*() {
      const u = yield* sql<UserDim & { updated_at: string }>`
        SELECT user_id, gender, updated_at::text AS updated_at FROM shop.users WHERE updated_at > ${usersSince}::timestamptz`
      for (const row of u) {
        users.set(row.user_id, { user_id: row.user_id, gender: row.gender })
        if (row.updated_at > usersSince || usersSince === "-infinity") usersSince = row.updated_at
      }
      const p = yield* sql<ProductDim & { updated_at: string }>`
        SELECT product_id, name, category, brand, price::text AS price, commission_rate::text AS commission_rate,
               updated_at::text AS updated_at
        FROM shop.products WHERE updated_at > ${productsSince}::timestamptz`
      for (const row of p) {
        const { updated_at, ...dim } = row
        products.set(row.product_id, dim)
        if (updated_at > productsSince || productsSince === "-infinity") productsSince = updated_at
      }
    })

    yield* refresh
    yield* Effect.forkScoped(
      refresh.pipe(Effect.catch((e) => Effect.logWarning("dimension refresh failed", e)), Effect.repeat(Schedule.spaced(refreshMs)), Effect.delay(refreshMs))
    )
    return Dimensions.of({
      user: (id) => users.get(id),
      product: (id) => products.get(id),
      refresh,
      size: () => ({ users: users.size, products: products.size })
    })
  })

export const layer = (refreshMs: number) => Layer.effect(Dimensions, make(refreshMs))
