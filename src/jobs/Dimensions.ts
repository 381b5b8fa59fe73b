/**
 * The users and products dimensions, cached in memory for the lookup join (SPEC §4) and
 * refreshed from PostgreSQL in the background, so rows changed while the engine runs (a
 * `load-dims`, a manual UPDATE) are used within `refreshMs`. Lookups are synchronous map reads
 * on the hot path; only changed rows travel on a refresh.
 *
 * "Changed" is decided by PostgreSQL's snapshots, not by time: each row carries the id of
 * the transaction that last wrote it (`change_xid`, set by a trigger, migrations/0004), and a
 * refresh reads, in one statement, the rows whose writer was not yet visible in the previous
 * refresh's snapshot, together with the statement's own snapshot for the next time. A
 * transaction that started before a refresh and commits after it is invisible to that
 * refresh and so picked up by the next one (a timestamp, the transaction's `now()`, would
 * be older than the refresh and be missed forever). Deleted rows stay cached.
 */
import { Context, Effect, Layer, Schedule, Semaphore } from "effect"
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

/**
 * The rows of `shop.<table>` whose last write is not visible in snapshot `since` (all rows
 * when undefined), and the statement's snapshot: the snapshot comes on every row, and on a
 * row of NULL columns when nothing changed. `change_xid >= pg_snapshot_xmin(since)` is
 * implied by the visibility test and lets the index on `change_xid` find the rows.
 */
export const changedRowsStatement = (table: "users" | "products", columns: string, since: string | undefined): string => `
  SELECT s.snapshot, ${columns}
  FROM (SELECT pg_current_snapshot()::text AS snapshot) s
  LEFT JOIN shop.${table} t ON ${since === undefined ? "TRUE" :
    "t.change_xid >= pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_visible_in_snapshot(t.change_xid, $1::pg_snapshot)"}`

type Row<A> = { readonly [K in keyof A]: A[K] | null } & { readonly snapshot: string }

export const make = (refreshMs: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const users = new Map<string, UserDim>()
    const products = new Map<string, ProductDim>()
    /** the snapshot each table was last read in; undefined: never read */
    let usersSince: string | undefined
    let productsSince: string | undefined
    const changed = <A>(table: "users" | "products", columns: string, since: string | undefined) =>
      sql.unsafe<Row<A>>(changedRowsStatement(table, columns, since), since === undefined ? [] : [since])

    // one refresh at a time: each leaves the cache as of its snapshot, and the next starts from it
    const lock = yield* Semaphore.make(1)
    const refresh = lock.withPermits(1)(Effect.gen(function*() {
      const u = yield* changed<UserDim>("users", "t.user_id, t.gender", usersSince)
      for (const row of u) {
        if (row.user_id !== null) users.set(row.user_id, { user_id: row.user_id, gender: row.gender })
      }
      usersSince = u[0]?.snapshot ?? usersSince
      const p = yield* changed<ProductDim>("products",
        "t.product_id, t.name, t.category, t.brand, t.price::text AS price, t.commission_rate::text AS commission_rate", productsSince)
      for (const { snapshot: _, ...row } of p) {
        if (row.product_id !== null) products.set(row.product_id, { ...row, product_id: row.product_id })
      }
      productsSince = p[0]?.snapshot ?? productsSince
    }))

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
