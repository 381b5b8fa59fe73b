/**
 * Reads back the source positions that `PgSink` commits with the rows they cover: where each
 * partition resumes after a restart (`restartOffset`: re-read from here to rebuild keyed
 * state) and up to where its output is already written (`nextOffset`).
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import type { CommittedPosition, PartitionRef } from "../engine/Source.ts"

/** A committed position as stored (the engine's `CommittedPosition`). */
export type StoredPosition = CommittedPosition

const ms = (text: string | null): number => text === null ? -Infinity : text === "infinity" ? Infinity : Date.parse(text)

/** Stored positions of `source` for `partitions` (all of the source's when omitted). */
export const load = (source: string, partitions?: ReadonlyArray<PartitionRef>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{
      topic: string; partition: number; next_offset: string; restart_offset: string
      max_event_time: string | null; watermark: string | null
    }>`SELECT topic, "partition", next_offset::text, restart_offset::text,
              to_char(max_event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS max_event_time,
              to_char(watermark AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS watermark
       FROM shop.source_positions WHERE source = ${source}`
    const wanted = partitions === undefined ? undefined : new Set(partitions.map((p) => `${p.topic}/${p.partition}`))
    return rows
      .filter((r) => wanted === undefined || wanted.has(`${r.topic}/${r.partition}`))
      .map((r): StoredPosition => ({
        topic: r.topic,
        partition: r.partition,
        nextOffset: Number(r.next_offset),
        restartOffset: Number(r.restart_offset),
        maxEventTime: ms(r.max_event_time),
        watermark: ms(r.watermark)
      }))
  })
