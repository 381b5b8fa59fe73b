/**
 * Writes the recommender's lists to `shop.user_recommendations` (SPEC §7) and its snapshots
 * with the job's positions to `shop.recommender_state`, behind the engine: a batch is merged
 * into what is pending (the newest list per user wins) and written by a background fiber at
 * most `writeEveryMs` later, so a user active every flush costs one write per interval, not
 * one per flush, and the engine does not wait for PostgreSQL unless `maxPendingUsers` lists
 * are pending (then it does: backpressure, bounded memory).
 *
 * Every write is one transaction under the tasks' fence: the lists of a task another member
 * has claimed are not written, and the task is reported fenced at the next batch (the driver
 * drops it). Positions are committed only with a snapshot (the state they are the positions
 * of), so a restored task resumes from its last snapshot; its lists are rewritten as its users
 * come back. Lists are idempotent: writing one again changes nothing.
 */
import { Cause, Clock, Effect, Exit, Schedule, Semaphore } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import { promisify } from "node:util"
import * as zlib from "node:zlib"
import { formatTimestamp } from "../domain/Timestamp.ts"
import type { CommittedPosition, PartitionRef } from "../engine/Source.ts"
import type { Recall, Sink, SinkBatch, TaskClaim, TaskPosition } from "../engine/Topology.ts"
import type { RecInput, RecList, RecOutput, RecSnapshot, Recommenders, TaskModelState } from "../jobs/Recommender.ts"
import * as PositionStore from "./PositionStore.ts"
import * as TaskOwnership from "./TaskOwnership.ts"
import { transaction } from "./Database.ts"

const gzip = promisify(zlib.gzip)
const gunzip = promisify(zlib.gunzip)

// one JSON parameter for the whole batch (as the other sinks do): no array type inference
const UPSERT_LISTS = `
INSERT INTO shop.user_recommendations AS r (user_id, rank, product_id, score, updated_at)
SELECT user_id, rank, product_id, score, updated_at
FROM json_to_recordset($1::json) AS x(user_id text, rank smallint, product_id text, score float8, updated_at timestamptz)
ON CONFLICT (user_id, rank) DO UPDATE SET product_id = EXCLUDED.product_id, score = EXCLUDED.score, updated_at = EXCLUDED.updated_at`

/** a list shorter than before leaves no stale ranks behind */
const TRIM_LISTS = `
DELETE FROM shop.user_recommendations r USING json_to_recordset($1::json) AS u(user_id text, n smallint)
WHERE r.user_id = u.user_id AND r.rank > u.n`

const LISTS_PER_STATEMENT = 200

const UPSERT_STATE = `
INSERT INTO shop.recommender_state AS s (source, task, epoch, taken_at, state)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (source, task) DO UPDATE SET epoch = EXCLUDED.epoch, taken_at = EXCLUDED.taken_at, state = EXCLUDED.state`

export interface RecommendationSinkOptions {
  readonly sourceName: string
  readonly job: string
  /** a list is written at most this long after the batch that made it (processing time) */
  readonly writeEveryMs: number
  /** above this many pending lists, a batch waits for the write in flight */
  readonly maxPendingUsers: number
  /** store snapshots at a stop (false for a replay, which always starts fresh) */
  readonly keepState: boolean
}

export interface RecommendationFigures {
  listsWritten: number
  rowsWritten: number
  snapshots: number
  snapshotBytes: number
  writes: number
  failedWrites: number
  lastWriteMs: number
  lastSnapshotAt: number | undefined
  lastError: string | undefined
}

interface Pending {
  lists: Map<string, RecList>
  /** per task: its newest snapshot and the task's positions as they stood with it */
  snapshots: Map<number, { readonly snapshot: RecSnapshot; readonly positions: ReadonlyArray<TaskPosition> }>
  claims: Map<number, TaskClaim>
}

const emptyPending = (): Pending => ({ lists: new Map(), snapshots: new Map(), claims: new Map() })

export const make = (options: RecommendationSinkOptions, recs: Recommenders) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const figures: RecommendationFigures = {
      listsWritten: 0, rowsWritten: 0, snapshots: 0, snapshotBytes: 0, writes: 0, failedWrites: 0, lastWriteMs: 0, lastSnapshotAt: undefined, lastError: undefined
    }
    let pending = emptyPending()
    /** the newest position of every partition handed to the sink, per task */
    const latest = new Map<number, Map<string, TaskPosition>>()
    /** tasks a write found fenced, reported with the next batch */
    const fencedFound = new Set<number>()
    const writing = yield* Semaphore.make(1)

    const writeOut = (taken: Pending) =>
      transaction(sql, Effect.gen(function*() {
        const fenced = new Set(yield* TaskOwnership.fenced(sql, options.sourceName, [...taken.claims.values()]))
        // in statements of at most LISTS_PER_STATEMENT users: the JSON of each is built just
        // before it is sent, so the engine's thread is never held for long (the API shares it)
        let lists = 0, rowCount = 0
        let rows: Array<{ user_id: string; rank: number; product_id: string; score: number; updated_at: string }> = []
        let trims: Array<{ user_id: string; n: number }> = []
        let users = 0
        const send = Effect.gen(function*() {
          if (rows.length > 0) yield* sql.unsafe(UPSERT_LISTS, [JSON.stringify(rows)])
          if (trims.length > 0) yield* sql.unsafe(TRIM_LISTS, [JSON.stringify(trims)])
          rowCount += rows.length
          rows = []
          trims = []
          users = 0
        })
        for (const list of taken.lists.values()) {
          if (fenced.has(list.task)) continue
          lists++
          const at = formatTimestamp(list.updatedAt)
          const n = Math.min(list.items.length, 10)
          for (let i = 0; i < n; i++) {
            const item = list.items[i]!
            rows.push({ user_id: list.userId, rank: i + 1, product_id: item.productId, score: item.score, updated_at: at })
          }
          if (n < 10) trims.push({ user_id: list.userId, n })
          if (++users === LISTS_PER_STATEMENT) yield* send
        }
        yield* send
        let snapshotBytes = 0
        const positions: Array<TaskPosition> = []
        for (const [task, { snapshot, positions: ps }] of taken.snapshots) {
          if (fenced.has(task)) continue
          const bytes = yield* Effect.promise(() => gzip(snapshot.json))
          snapshotBytes += bytes.length
          const epoch = taken.claims.get(task)?.epoch ?? ps[0]?.epoch ?? 0
          yield* sql.unsafe(UPSERT_STATE, [options.sourceName, task, epoch, formatTimestamp(snapshot.takenAt), bytes])
          for (const p of ps) positions.push(p)
        }
        if (positions.length > 0) {
          const recordedAt = formatTimestamp(yield* Clock.currentTimeMillis)
          yield* sql.unsafe(PositionStore.UPSERT, [JSON.stringify(PositionStore.rows(options.sourceName, options.job, positions, recordedAt))])
        }
        return { fenced, lists, rows: rowCount, snapshots: taken.snapshots.size, snapshotBytes }
      }))

    /** Writes what is pending; on failure it goes back under what came meanwhile (newer lists win). */
    const writePending = Semaphore.withPermits(writing, 1)(Effect.gen(function*() {
      if (pending.lists.size === 0 && pending.snapshots.size === 0) return
      const taken = pending
      pending = emptyPending()
      const started = yield* Clock.currentTimeMillis
      const result = yield* Effect.exit(writeOut(taken))
      const finished = yield* Clock.currentTimeMillis
      if (Exit.isFailure(result)) {
        figures.failedWrites++
        figures.lastError = String((result.cause as { message?: string })?.message ?? result.cause)
        for (const [user, list] of taken.lists) if (!pending.lists.has(user)) pending.lists.set(user, list)
        for (const [task, s] of taken.snapshots) if (!pending.snapshots.has(task)) pending.snapshots.set(task, s)
        for (const [task, c] of taken.claims) if (!pending.claims.has(task)) pending.claims.set(task, c)
        return yield* Effect.failCause(result.cause)
      }
      const r = result.value
      for (const t of r.fenced) fencedFound.add(t)
      figures.writes++
      figures.listsWritten += r.lists
      figures.rowsWritten += r.rows
      figures.snapshots += r.snapshots
      figures.snapshotBytes += r.snapshotBytes
      figures.lastWriteMs = finished - started
      if (r.snapshots > 0) figures.lastSnapshotAt = finished
    }))

    // the lists reach the table within writeEveryMs of their batch, whatever the input does
    yield* Effect.forkScoped(Effect.repeat(
      writePending.pipe(Effect.catchCause((cause) => Effect.logWarning(`recommendations: cannot write (${String(Cause.squash(cause)).split("\n")[0]}); retrying`))),
      Schedule.spaced(options.writeEveryMs)
    ))

    const write = (batch: SinkBatch<RecOutput>) =>
      Effect.gen(function*() {
        for (const p of batch.positions) {
          let ps = latest.get(p.task)
          if (ps === undefined) latest.set(p.task, ps = new Map())
          const prior = ps.get(`${p.topic}/${p.partition}`)
          if (prior !== undefined && prior.epoch !== p.epoch) ps.clear() // a new claim: its positions only
          ps.set(`${p.topic}/${p.partition}`, p)
        }
        for (const c of batch.claims) {
          const prior = pending.claims.get(c.task)
          if (prior !== undefined && prior.epoch !== c.epoch) {
            // the task was claimed again (by this process): what its old claim left pending goes
            for (const [user, list] of pending.lists) if (list.task === c.task) pending.lists.delete(user)
            pending.snapshots.delete(c.task)
          }
          pending.claims.set(c.task, c)
        }
        for (const o of batch.outputs) {
          if (o._tag === "List") pending.lists.set(o.userId, o)
          else pending.snapshots.set(o.task, { snapshot: o, positions: [...(latest.get(o.task)?.values() ?? [])] })
        }
        if (pending.lists.size >= options.maxPendingUsers) yield* writePending
        const fenced = [...fencedFound]
        fencedFound.clear()
        return { fenced }
      })

    const close = Effect.gen(function*() {
      if (!options.keepState) return yield* writePending
      // the stop's own snapshot: every task has processed all it will, so its state and its
      // newest positions agree
      const now = yield* Clock.currentTimeMillis
      for (const m of recs.all()) {
        const ps = [...(latest.get(m.task)?.values() ?? [])]
        if (ps.length === 0) continue
        pending.snapshots.set(m.task, { snapshot: { _tag: "Snapshot", task: m.task, takenAt: now, json: JSON.stringify(m.snapshot()) }, positions: ps })
        if (!pending.claims.has(m.task)) pending.claims.set(m.task, { task: m.task, epoch: ps[0]!.epoch })
      }
      yield* writePending
    })

    const sink: Sink<RecOutput, SqlError> = { write, close }

    const recall: Recall<RecInput, SqlError> = {
      positions: (partitions: ReadonlyArray<PartitionRef>) =>
        Effect.gen(function*() {
          const tasks = [...new Set(partitions.map((p) => p.partition))]
          const rows = yield* sql.unsafe<{ task: number; state: Uint8Array }>(
            `SELECT task, state FROM shop.recommender_state WHERE source = $1 AND task = ANY($2::int[])`, [options.sourceName, tasks])
          const restored = new Set<number>()
          for (const row of rows) {
            const m = recs.get(row.task)
            if (m === undefined) continue
            const json = (yield* Effect.promise(() => gunzip(row.state))).toString("utf8")
            m.restore(JSON.parse(json) as TaskModelState)
            restored.add(row.task)
            yield* Effect.logInfo(`task ${row.task}: recommender restored from its snapshot (${m.model.stats().users} users, ${row.state.length} bytes)`)
          }
          // positions without a snapshot (none are written so) would skip input the model never saw
          const stored: ReadonlyArray<CommittedPosition> = yield* PositionStore.load(options.sourceName, options.job, partitions).pipe(Effect.provideService(SqlClient.SqlClient, sql))
          return stored.filter((p) => restored.has(p.partition))
        })
    }

    return { sink, recall, figures, writePending }
  })
