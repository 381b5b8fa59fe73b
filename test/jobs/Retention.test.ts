/**
 * Retention on a real PostgreSQL: rows recorded before the cutoff go (in chunks, however
 * many), newer ones stay, and a setting of 0 keeps its table forever.
 */
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Retention from "../../src/jobs/Retention.ts"
import * as Database from "../../src/sinks/Database.ts"
import { createDatabase, dropDatabase, postgresAvailable, query } from "../support/TestDatabase.ts"

const pgOk = await postgresAvailable()
const NOW = Date.parse("2026-12-01T12:00:00Z")
const DAY = 86_400_000

describe.skipIf(!pgOk)("retention", () => {
  let db: { url: string; name: string }
  beforeAll(async () => {
    db = await createDatabase("insights_retention")
    await Effect.runPromise(Effect.void.pipe(Effect.provide(Database.layer(db.url)), Effect.scoped)) // migrations
    // 25 000 samples a minute apart ending now (17.4 days): more than two chunks are past 7 days
    await query(db.url, `INSERT INTO shop.engine_status (sampled_at, events_per_second, consumer_lag, events_total, late_events_total, ingest_errors_total,
        rows_written_total, users_held, clicks_held, pending_checkouts)
      SELECT $1::timestamptz - make_interval(mins => n), 0, 0, 0, 0, 0, 0, 0, 0, 0 FROM generate_series(0, 24999) AS n`, [new Date(NOW).toISOString()])
    for (const [id, age] of [["old", 31 * DAY], ["new", 29 * DAY]] as const) {
      const at = new Date(NOW - age).toISOString()
      await query(db.url, `INSERT INTO shop.ingest_errors (input, source, "partition", "offset", payload, error, recorded_at) VALUES ('t', 'clicks', 0, $1, $2, 'bad', $3)`,
        [id === "old" ? 1 : 2, id, at])
      await query(db.url, `INSERT INTO shop.late_events (topic, event_id, user_id, event_timestamp, watermark, "partition", "offset", payload, recorded_at)
        VALUES ('clicks', $1, 'u', $2, $2, 0, 0, '{}', $2)`, [id, at])
    }
  })
  afterAll(async () => { if (db) await dropDatabase(db.name) })

  const prune = (settings: Retention.RetentionSettings) =>
    Effect.runPromise(Retention.prune(settings, NOW).pipe(Effect.provide(Database.layer(db.url)), Effect.scoped))

  it("keeps everything with retention 0", async () => {
    expect(await prune({ engineStatusMs: 0, ingestErrorsMs: 0, lateEventsMs: 0 })).toEqual({})
    expect((await query<{ n: number }>(db.url, "SELECT count(*)::int AS n FROM shop.engine_status"))[0]!.n).toBe(25_000)
  })

  it("deletes what was recorded before the cutoff, in chunks, and keeps the rest", async () => {
    const deleted = await prune({ engineStatusMs: 7 * DAY, ingestErrorsMs: 30 * DAY, lateEventsMs: 30 * DAY })
    const kept = 7 * 24 * 60 + 1 // minutes 0..10080 are not older than 7 days
    expect(deleted).toEqual({ "shop.engine_status": 25_000 - kept, "shop.ingest_errors": 1, "shop.late_events": 1 })
    expect((await query<{ n: number }>(db.url, "SELECT count(*)::int AS n FROM shop.engine_status"))[0]!.n).toBe(kept)
    expect(await query(db.url, "SELECT payload FROM shop.ingest_errors")).toEqual([{ payload: "new" }])
    expect(await query(db.url, "SELECT event_id FROM shop.late_events")).toEqual([{ event_id: "new" }])
    expect(await prune({ engineStatusMs: 7 * DAY, ingestErrorsMs: 30 * DAY, lateEventsMs: 30 * DAY }))
      .toEqual({ "shop.engine_status": 0, "shop.ingest_errors": 0, "shop.late_events": 0 })
  })
})
