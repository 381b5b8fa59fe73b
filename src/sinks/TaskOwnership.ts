/**
 * Claims tasks for this process in `shop.task_owners`: each claim bumps the task's epoch, so
 * whatever a previous owner still has in flight is fenced by the sinks' transactions (they
 * check the epoch under a share lock; the claim's update waits for those that hold it, so
 * every batch the old owner commits is visible to the new owner's restore).
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import * as os from "node:os"
import type { Ownership, TaskClaim } from "../engine/Topology.ts"

const CLAIM = `
INSERT INTO shop.task_owners AS t (source, task, epoch, owner, claimed_at)
SELECT $1, n, 1, $2, now() FROM unnest($3::int[]) AS n
ON CONFLICT (source, task) DO UPDATE SET epoch = t.epoch + 1, owner = EXCLUDED.owner, claimed_at = EXCLUDED.claimed_at
RETURNING task, epoch::text AS epoch`

const FENCE = `
SELECT task, epoch::text AS epoch FROM shop.task_owners WHERE source = $1 AND task = ANY($2::int[]) FOR SHARE`

/**
 * Inside a sink's transaction: the tasks of `claims` that another member has claimed since
 * (their writes must not happen). The share lock keeps a new claim waiting until the
 * transaction ends, so what it commits is visible to the next owner's restore.
 */
export const fenced = (sql: SqlClient.SqlClient, sourceName: string, claims: ReadonlyArray<TaskClaim>) =>
  claims.length === 0 ? Effect.succeed([] as Array<number>) :
  Effect.map(sql.unsafe<{ task: number; epoch: string }>(FENCE, [sourceName, claims.map((c) => c.task)]), (rows) => {
    const current = new Map(rows.map((r) => [r.task, Number(r.epoch)]))
    return claims.filter((c) => current.get(c.task) !== c.epoch).map((c) => c.task)
  })

/** Who this process is, for people reading task_owners. */
export const ownerName = (): string => `${os.hostname()}:${process.pid}`

export const make = (sourceName: string, owner: string = ownerName()) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const ownership: Ownership<SqlError> = {
      claim: (tasks) =>
        sql.unsafe<{ task: number; epoch: string }>(CLAIM, [sourceName, owner, [...tasks]]).pipe(
          Effect.map((rows) => rows.map((r): TaskClaim => ({ task: r.task, epoch: Number(r.epoch) })).sort((a, b) => a.task - b.task))
        )
    }
    return ownership
  })
