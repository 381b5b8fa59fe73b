/**
 * How the attribution job resumes after a restart (ARCHITECTURE: guarantees). Each partition
 * is re-read from its committed `restart_offset`, the oldest offset whose event may still be
 * in keyed state; events before the committed `next_offset` were processed already, and what
 * they left behind is read from the tables written in the same transactions:
 *
 * - a click that is in `late_events` was late and left nothing; any other was held;
 * - a checkout that is in `checkout_attribution` was written (its id is remembered for
 *   dedup); any other was still waiting for the watermark.
 *
 * So the restarted engine holds exactly the state the stopped one had, and the tables end up
 * as after an uninterrupted run. (Chosen over snapshots of state: nothing extra is written
 * on the hot path; the price is re-reading at most A of clicks at start.)
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import type { PartitionRef } from "../engine/Source.ts"
import type { Recall } from "../engine/Topology.ts"
import * as PositionStore from "../sinks/PositionStore.ts"
import type { AttributionInput, Topics } from "./Attribution.ts"

export const make = (sourceName: string, job: string, topics: Topics) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const restore: Recall<AttributionInput, import("effect/sql/SqlError").SqlError> = {
      positions: (partitions: ReadonlyArray<PartitionRef>) => PositionStore.load(sourceName, job, partitions).pipe(Effect.provideService(SqlClient.SqlClient, sql)),
      recall: (inputs) =>
        Effect.gen(function*() {
          const clickIds: Array<string> = []
          const checkoutIds: Array<string> = []
          for (const i of inputs) {
            if (i.side === "build") clickIds.push(i.element.id)
            else if (i.side === "probe") checkoutIds.push(i.element.id)
          }
          const late = clickIds.length === 0 ? [] : yield* sql<{ event_id: string }>`
            SELECT event_id FROM shop.late_events WHERE topic = ${topics.clicks} AND event_id = ANY(${clickIds})`
          const written = checkoutIds.length === 0 ? [] : yield* sql<{ checkout_id: string }>`
            SELECT checkout_id FROM shop.checkout_attribution WHERE checkout_id = ANY(${checkoutIds})`
          const lateIds = new Set(late.map((r) => r.event_id))
          const writtenIds = new Set(written.map((r) => r.checkout_id))
          return inputs.map((i): AttributionInput | undefined =>
            i.side === "build" ? (lateIds.has(i.element.id) ? undefined : { side: "restore-build", element: i.element })
            : i.side === "probe" ? { side: "restore-probe", element: i.element, written: writtenIds.has(i.element.id) }
            : i
          )
        })
    }
    return restore
  })
