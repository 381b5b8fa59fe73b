/**
 * Reads back the source positions that the sinks commit with the rows they cover, per job:
 * up to where a job's output is written (`nextOffset`) and where a partition must be re-read
 * from to rebuild that job's state (`restartOffset`). A partition resumes at the oldest
 * restart offset of any job.
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { formatTimestamp } from "../domain/Timestamp.ts"
import type { CommittedPosition, PartitionRef } from "../engine/Source.ts"
import type { TaskPosition } from "../engine/Topology.ts"

/** Positions of a job's partitions, one JSON parameter; a position never moves back within an owner's epoch. */
export const UPSERT = `
INSERT INTO shop.source_positions AS t (source, job, topic, "partition", next_offset, restart_offset, max_event_time, watermark, updated_at, task, epoch)
SELECT source, job, topic, "partition", next_offset, restart_offset, max_event_time, watermark, updated_at, task, epoch
FROM json_populate_recordset(NULL::shop.source_positions, $1::json)
ON CONFLICT (source, job, topic, "partition") DO UPDATE SET
  next_offset = EXCLUDED.next_offset, restart_offset = EXCLUDED.restart_offset,
  max_event_time = EXCLUDED.max_event_time, watermark = EXCLUDED.watermark, updated_at = EXCLUDED.updated_at,
  task = EXCLUDED.task, epoch = EXCLUDED.epoch
WHERE t.epoch < EXCLUDED.epoch OR t.next_offset <= EXCLUDED.next_offset`

const timestampOrNull = (ms: number): string | null => Number.isFinite(ms) ? formatTimestamp(ms) : ms > 0 ? "infinity" : null

/** The rows UPSERT takes for `positions` of job `job`. */
export const rows = (source: string, job: string, positions: ReadonlyArray<TaskPosition>, recordedAt: string) =>
  positions.map((p) => ({
    source,
    job,
    topic: p.topic,
    partition: p.partition,
    next_offset: p.nextOffset,
    restart_offset: p.restartOffset ?? p.nextOffset,
    max_event_time: timestampOrNull(p.maxEventTime ?? -Infinity),
    watermark: timestampOrNull(p.watermark),
    updated_at: recordedAt,
    task: p.task,
    epoch: p.epoch
  }))

/** A stored time as text (`to_char` of timestamptz, or `infinity`) to epoch ms; NULL is −∞. */
export const storedTime = (text: string | null): number => text === null ? -Infinity : text === "infinity" ? Infinity : Date.parse(text)

const wantedBy = (partitions?: ReadonlyArray<PartitionRef>) => {
  const wanted = partitions === undefined ? undefined : new Set(partitions.map((p) => `${p.topic}/${p.partition}`))
  return (r: { topic: string; partition: number }) => wanted === undefined || wanted.has(`${r.topic}/${r.partition}`)
}

/** Stored positions of job `job` of `source` for `partitions` (all of them when omitted). */
export const load = (source: string, job: string, partitions?: ReadonlyArray<PartitionRef>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{
      topic: string; partition: number; next_offset: string; restart_offset: string
      max_event_time: string | null; watermark: string | null
    }>`SELECT topic, "partition", next_offset::text, restart_offset::text,
              to_char(max_event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS max_event_time,
              CASE WHEN watermark = 'infinity' THEN 'infinity'
                   ELSE to_char(watermark AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') END AS watermark
       FROM shop.source_positions WHERE source = ${source} AND job = ${job}`
    return rows.filter(wantedBy(partitions)).map((r): CommittedPosition => ({
      topic: r.topic,
      partition: r.partition,
      nextOffset: Number(r.next_offset),
      restartOffset: Number(r.restart_offset),
      maxEventTime: storedTime(r.max_event_time),
      watermark: storedTime(r.watermark)
    }))
  })

/**
 * Where each of `partitions` starts reading: the oldest restart offset over `jobs`. A partition
 * that some job has no position for is left out (it starts at the earliest offset in the log,
 * so that job sees everything).
 */
export const startOffsets = (source: string, jobs: ReadonlyArray<string>, partitions: ReadonlyArray<PartitionRef>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ topic: string; partition: number; restart_offset: string; jobs: number }>`
      SELECT topic, "partition", min(restart_offset)::text AS restart_offset, count(DISTINCT job)::int AS jobs
      FROM shop.source_positions WHERE source = ${source} AND job = ANY(${[...jobs]})
      GROUP BY topic, "partition"`
    return rows.filter(wantedBy(partitions)).filter((r) => r.jobs === jobs.length)
      .map((r) => ({ topic: r.topic, partition: r.partition, offset: Number(r.restart_offset) }))
  })
