/**
 * `GET /api/users/:userId/recommendations`: the recommendations of one user as JSON.
 * Recommendations are not computed yet, so a known user (a row of `shop.users`) gets an
 * empty list; an unknown one gets 404, and an unreachable database 503.
 */
import { Effect } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { SqlClient } from "effect/sql"

export const handler = Effect.gen(function*() {
  const { userId } = yield* HttpRouter.params
  if (userId === undefined || userId === "") return yield* HttpServerResponse.json({ error: "unknown user" }, { status: 404 })
  const sql = yield* SqlClient.SqlClient
  const found = yield* sql<{ readonly found: number }>`SELECT 1 AS found FROM shop.users WHERE user_id = ${userId} LIMIT 1`.pipe(
    Effect.timeout("2 seconds"),
    Effect.map((rows) => rows.length > 0),
    Effect.catchCause(() => Effect.succeed(undefined))
  )
  if (found === undefined) return yield* HttpServerResponse.json({ error: "database unavailable" }, { status: 503 })
  if (!found) return yield* HttpServerResponse.json({ error: "unknown user" }, { status: 404 })
  return yield* HttpServerResponse.json({ userId, recommendations: [] })
})
