/**
 * Liveness and readiness: `/healthz` answers while the process runs; `/readyz` only while the
 * database answers, the source is connected (its broker reachable) and the engine makes progress (503 with the
 * reason in JSON otherwise). A process that is alive but stuck (messages waiting and nothing
 * read, or read and nothing written, for longer than `STUCK_AFTER_MS`) is not ready.
 */
import { Clock, Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import type { EngineStats } from "../engine/EngineStats.ts"

export interface Readiness {
  readonly ready: boolean
  readonly checks: Record<string, { readonly ok: boolean; readonly detail?: string }>
}

export class Health extends Context.Service<Health, {
  readonly readiness: Effect.Effect<Readiness>
}>()("insights/http/Health") {}

export interface Check {
  readonly ok: boolean
  readonly detail?: string
}

/**
 * Whether the engine moves at processing time `now`: stuck when messages are waiting in its
 * partitions and nothing was read for `stuckAfterMs` (since `since` when nothing ever was), or
 * when it read after its last commit and has committed nothing for `stuckAfterMs`.
 */
export const progress = (stats: EngineStats, stuckAfterMs: number, since: number, now: number): Check => {
  let waiting = 0
  let lastRead: number | undefined
  for (const p of stats.partitions.values()) {
    if (p.highWatermark !== undefined) waiting += Math.max(0, p.highWatermark - p.readOffset)
    if (p.lastReadAt !== undefined && (lastRead === undefined || p.lastReadAt > lastRead)) lastRead = p.lastReadAt
  }
  const seconds = (ms: number) => `${Math.round(ms / 1000)} s`
  const quietFor = now - (lastRead ?? since)
  if (waiting > 0 && quietFor > stuckAfterMs) return { ok: false, detail: `stuck: ${waiting} messages waiting, nothing read for ${seconds(quietFor)}` }
  const committed = stats.primary.sink.lastCommitAt
  const unwrittenFor = now - (committed ?? since)
  if (lastRead !== undefined && (committed === undefined || committed < lastRead) && unwrittenFor > stuckAfterMs) {
    return { ok: false, detail: `stuck: messages read but nothing written for ${seconds(unwrittenFor)}` }
  }
  return { ok: true }
}

/**
 * `source`: whether the source is connected, with the reason when not (e.g. "Kafka broker
 * unreachable since …: …"); `moving`: the engine's progress at processing time `now`.
 */
export const make = (source: () => Check, moving?: (now: number) => Check) =>
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
        const connected = source()
        const engine = moving === undefined ? { ok: true } : moving(yield* Clock.currentTimeMillis)
        return { ready: db.ok && connected.ok && engine.ok, checks: { database: db, source: connected, progress: engine } }
      })
    })
  })

export const layer = (source: () => Check, moving?: (now: number) => Check) => Layer.effect(Health, make(source, moving))
