/**
 * `GET /api/users/:userId/recommendations` (SPEC §7): the user's top 10 as JSON, answered
 * from the recommender's models in memory (a list is there as soon as the event is
 * processed). A user this process does not hold (another member's task) is read from
 * `shop.user_recommendations`; a user with no events gets the popularity list with
 * `personalized: false` and `updated_at: null`. 400 for an id over 256 characters; 503 only
 * when nothing can answer (no model in memory and the database unreachable).
 */
import { Effect, Option } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { SqlClient } from "effect/sql"
import { formatTimestamp } from "../domain/Timestamp.ts"
import { Dimensions } from "../jobs/Dimensions.ts"
import { RecommenderRegistry } from "../jobs/Recommender.ts"
import type { Scored } from "../recs/Model.ts"

const MAX_ID = 256
const noStore = { "cache-control": "no-store" }

export interface RecommendedItem {
  readonly product_id: string
  readonly name: string | null
  readonly category: string | null
  readonly brand: string | null
  readonly price: number | null
  readonly score: number
}

export interface RecommendationsBody {
  readonly user_id: string
  readonly personalized: boolean
  readonly updated_at: string | null
  readonly items: ReadonlyArray<RecommendedItem>
}

const round = (x: number) => Math.round(x * 1e6) / 1e6

const stored = (userId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ product_id: string; score: number; updated_at: string }>`
      SELECT product_id, score, to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS updated_at
      FROM shop.user_recommendations WHERE user_id = ${userId} ORDER BY rank`
    return rows
  }).pipe(Effect.timeout("2 seconds"))

export const handler = Effect.gen(function*() {
  // the router hands the path segment decoded
  const userId = (yield* HttpRouter.params).userId ?? ""
  if (userId.length === 0) return yield* HttpServerResponse.json({ error: "a user id is required" }, { status: 400, headers: noStore })
  if (userId.length > MAX_ID) return yield* HttpServerResponse.json({ error: `a user id has at most ${MAX_ID} characters (got ${userId.length})` }, { status: 400, headers: noStore })
  const recs = yield* RecommenderRegistry
  const dims = yield* Dimensions
  const item = (s: Scored): RecommendedItem => {
    const p = dims.product(s.productId)
    const price = p?.price === null || p?.price === undefined ? null : Number(p.price)
    return { product_id: s.productId, name: p?.name ?? null, category: p?.category ?? null, brand: p?.brand ?? null, price, score: round(s.score) }
  }
  const answer = (body: RecommendationsBody) => HttpServerResponse.json(body, { headers: noStore })

  const live = recs.lookup(userId)
  if (live !== undefined) {
    return yield* answer({
      user_id: userId, personalized: true, updated_at: live.updatedAt === undefined ? null : formatTimestamp(live.updatedAt), items: live.items.map(item)
    })
  }
  // a user no model here knows: another member's (read what it stored), unless this process
  // holds every task (then the user has no events: the popularity list, without a query)
  const rows = recs.holdsEveryTask() ? Option.some([]) : yield* stored(userId).pipe(Effect.option)
  if (Option.isSome(rows) && rows.value.length > 0) {
    const updatedAt = rows.value.reduce((a, r) => r.updated_at > a ? r.updated_at : a, rows.value[0]!.updated_at)
    return yield* answer({ user_id: userId, personalized: true, updated_at: updatedAt, items: rows.value.map((r) => item({ productId: r.product_id, score: r.score })) })
  }
  if (Option.isNone(rows) && recs.figures().tasks === 0) {
    return yield* HttpServerResponse.json({ error: "no recommender is running in this process and the database does not answer" }, { status: 503, headers: noStore })
  }
  return yield* answer({ user_id: userId, personalized: false, updated_at: null, items: recs.popular(10).map(item) })
})
