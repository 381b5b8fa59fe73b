/**
 * A small business view for the status page, read from the hourly rollup: revenue and paid
 * checkouts per hour over the last 24 rolled hours, and the top sources over them, so
 * `npm start` shows insights without Grafana. "Last" is by event time (the newest rolled
 * hour), so a replay of last month's data shows last month.
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"

export interface HourFigures {
  readonly hour: string
  readonly revenue: number
  readonly paidCheckouts: number
  readonly checkouts: number
}

export interface InsightsView {
  readonly hours: ReadonlyArray<HourFigures>
  readonly topSources: ReadonlyArray<{ readonly source: string; readonly revenue: number; readonly paidCheckouts: number; readonly checkouts: number }>
}

export class Insights extends Context.Service<Insights, {
  readonly lastDay: Effect.Effect<InsightsView, string>
}>()("insights/http/Insights") {}

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const lastDay = Effect.gen(function*() {
    const hours = yield* sql<{ hour: string; revenue: string; paid: number; checkouts: number }>`
      WITH last AS (SELECT max(hour) AS h FROM shop.hourly_rollup)
      SELECT to_char(r.hour AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS hour, sum(r.revenue)::text AS revenue,
             sum(r.paid_checkouts)::int AS paid, sum(r.checkouts)::int AS checkouts
      FROM shop.hourly_rollup r, last
      WHERE r.dimension = 'source' AND r.hour > last.h - interval '24 hours'
      GROUP BY r.hour ORDER BY r.hour`
    const top = yield* sql<{ source: string; revenue: string; paid: number; checkouts: number }>`
      WITH last AS (SELECT max(hour) AS h FROM shop.hourly_rollup)
      SELECT r.value AS source, sum(r.revenue)::text AS revenue, sum(r.paid_checkouts)::int AS paid, sum(r.checkouts)::int AS checkouts
      FROM shop.hourly_rollup r, last
      WHERE r.dimension = 'source' AND r.hour > last.h - interval '24 hours'
      GROUP BY r.value ORDER BY sum(r.revenue) DESC, r.value LIMIT 6`
    return {
      hours: hours.map((h) => ({ hour: h.hour, revenue: Number(h.revenue), paidCheckouts: h.paid, checkouts: h.checkouts })),
      topSources: top.map((t) => ({ source: t.source, revenue: Number(t.revenue), paidCheckouts: t.paid, checkouts: t.checkouts }))
    }
  }).pipe(Effect.timeout("3 seconds"), Effect.mapError((e) => `cannot read the rollup: ${String((e as { message?: string }).message ?? e)}`))
  return Insights.of({ lastDay })
})

export const layer = Layer.effect(Insights, make)
