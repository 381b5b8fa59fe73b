/**
 * One member of the consume ceiling's group (forked by ConsumeCeiling.ts): the daemon's Kafka
 * source (`KafkaSource.make`, its consumer settings) and nothing else. Its partitions wait
 * (their start offsets are asked and not answered) until the parent says go, once every
 * member is in the group; then it counts records until every partition it holds is read to
 * the end offsets the parent sent, and reports when its first record came and when it was done.
 */
import { Effect, Stream } from "effect"
import { partitionId } from "../engine/Source.ts"
import * as KafkaSource from "../sources/KafkaSource.ts"
import { childConfig, runChild, wallNow } from "./Common.ts"
import { quietKafkajsTimerWarning } from "../Warnings.ts"

quietKafkajsTimerWarning()

export interface ConsumeWorkerConfig {
  readonly brokers: ReadonlyArray<string>
  readonly topics: ReadonlyArray<string>
  readonly groupId: string
  readonly partitions: number
}

const config = childConfig<ConsumeWorkerConfig>()

let goAt = 0
let ends: Record<string, { readonly low: number; readonly high: number }> = {}
const go = new Promise<void>((resolve) => {
  process.once("message", (m: { readonly ends: typeof ends }) => {
    goAt = wallNow()
    ends = m.ends
    resolve()
  })
})

const run = Effect.gen(function*() {
  const source = yield* KafkaSource.make({
    brokers: config.brokers, groupId: config.groupId, topics: config.topics, partitions: config.partitions,
    clientId: "insights-bench-consume",
    startOffsets: () => Effect.promise(() => go).pipe(Effect.as([]))
  })
  process.send!({ type: "ready" })
  const held = new Set<string>()
  const next = new Map<string, number>()
  let records = 0
  let firstAt = 0
  let doneAt = 0
  const finished = () => held.size > 0 && [...held].every((id) => (next.get(id) ?? ends[id]?.low ?? 0) >= (ends[id]?.high ?? 0))
  yield* Stream.runForEachWhile(source.events, (event) => Effect.sync(() => {
    if (event._tag === "Assigned") for (const p of event.partitions) held.add(partitionId(p))
    else if (event._tag === "Revoked") for (const p of event.partitions) held.delete(partitionId(p))
    else if (event._tag === "Records" && event.records.length > 0) {
      if (firstAt === 0) firstAt = wallNow()
      records += event.records.length
      next.set(partitionId(event), event.records[event.records.length - 1]!.offset + 1)
    }
    if (finished()) {
      doneAt = wallNow()
      return false
    }
    return true
  }))
  return { goAt, firstAt, doneAt, records, partitions: [...held] }
}).pipe(Effect.scoped)

runChild(() => Effect.runPromise(run))
