/**
 * Liveness and readiness: `/healthz` answers while the process runs; `/readyz` only while the
 * database answers and the source is connected (503 with the reason in JSON otherwise).
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"

export interface Readiness {
  readonly ready: boolean
  readonly checks: Record<string, { readonly ok: boolean; readonly detail?: string }>
}

export class Health extends Context.Service<Health, {
  readonly readiness: Effect.Effect<Readiness>
}>()("insights/http/Health") {}

export const make = (sourceConnected: () => boolean) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const database = sql`SELECT 1`.pipe(
      Effect.timeout("2 seconds"),
      Effect.as({ ok: true }),
      Effect.catchCause((cause) => Effect.succeed({ ok: false, detail: `database unreachable: ${String(cause).split("\n")[0]}` }))
    )
    return Health.of({
      readiness: Effect.gen(function*() {
        const db = yield* database
        const source = sourceConnected() ? { ok: true } : { ok: false, detail: "source not connected (no partitions assigned yet)" }
        return { ready: db.ok && source.ok, checks: { database: db, source } }
      })
    })
  })

export const layer = (sourceConnected: () => boolean) => Layer.effect(Health, make(sourceConnected))
