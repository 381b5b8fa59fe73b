/**
 * The consume ceiling: what the Kafka client alone reads per second of the bench's topics
 * (produced beforehand), with the daemon's source and consumer settings and as many members
 * of one group as the daemon runs workers, each in its own process, doing nothing with what
 * it reads. The members join first; once the group is stable with all of them, they are let
 * go together. events ÷ (last member done − first record read).
 */
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { partitionId } from "../engine/Source.ts"
import { makeAdmin, makeClient, partitionEnds } from "../sources/KafkaClient.ts"
import { forkChild, log, rate, sleep } from "./Common.ts"
import type { ConsumeWorkerConfig } from "./consumeWorker.ts"
import type { BenchTopics } from "./Produce.ts"

export interface ConsumeCeiling {
  readonly events_per_s: number
  readonly events: number
  readonly members: number
  readonly seconds: number
  /** records read more than once (a member's partitions moved after the start): the figure is then a little low */
  readonly read_twice: number
}

/** Runs `f` with an admin client of the bench's broker. */
const withAdmin = <A>(brokers: ReadonlyArray<string>, f: (admin: Effect.Success<ReturnType<typeof makeAdmin>>) => Promise<A>): Promise<A> =>
  Effect.runPromise(Effect.gen(function*() {
    const admin = yield* makeAdmin(yield* makeClient({ brokers, clientId: "insights-bench-admin" }))
    return yield* Effect.promise(() => f(admin))
  }).pipe(Effect.scoped))

export const topicEnds = (brokers: ReadonlyArray<string>, topics: ReadonlyArray<string>) =>
  Effect.runPromise(Effect.gen(function*() {
    const admin = yield* makeAdmin(yield* makeClient({ brokers, clientId: "insights-bench-admin" }))
    const out: Record<string, { low: number; high: number }> = {}
    for (const topic of topics) for (const e of yield* partitionEnds(admin, topic)) out[partitionId({ topic, partition: e.partition })] = { low: e.low, high: e.high }
    return out
  }).pipe(Effect.scoped))

export const measureConsumeCeiling = async (brokers: ReadonlyArray<string>, topics: BenchTopics, partitions: number, members: number): Promise<ConsumeCeiling> => {
  const names = [topics.clicks, topics.checkouts]
  const ends = await topicEnds(brokers, names)
  const total = Object.values(ends).reduce((n, e) => n + e.high - e.low, 0)
  const groupId = `insights-bench-consume-${randomBytes(4).toString("hex")}`
  const children = Array.from({ length: members }, () =>
    forkChild("consumeWorker.js", { brokers, topics: names, groupId, partitions } satisfies ConsumeWorkerConfig))
  try {
    await Promise.all(children.map((c) => c.ready))
    await withAdmin(brokers, async (admin) => {
      for (let i = 0; ; i++) {
        const { groups } = await admin.describeGroups([groupId])
        const g = groups[0]
        if (g !== undefined && g.state === "Stable" && g.members.length === members) return
        if (i > 600) throw new Error(`the consume ceiling's group did not become stable with ${members} members: ${JSON.stringify(g?.state)}`)
        await sleep(50)
      }
    })
    await sleep(300) // every member has taken its assignment (the join event follows the group's sync)
    for (const c of children) c.go({ ends })
    const results = await Promise.all(children.map((c) => c.done))
    const start = Math.min(...results.map((r) => r["firstAt"] as number).filter((t) => t > 0))
    const end = Math.max(...results.map((r) => r["doneAt"] as number))
    const read = results.reduce((n, r) => n + (r["records"] as number), 0)
    if (read < total) throw new Error(`the consume ceiling read ${read} records of ${total}`)
    log(`consume ceiling, ${members} members: ${rate(total, end - start)} events/s`)
    return { events_per_s: rate(total, end - start), events: total, members, seconds: Math.round(end - start) / 1000, read_twice: read - total }
  } finally {
    for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL")
  }
}

/** Deletes the bench's topics (best effort: the broker keeps nothing of a run). */
export const deleteTopics = (brokers: ReadonlyArray<string>, topics: ReadonlyArray<string>): Promise<void> =>
  withAdmin(brokers, (admin) => admin.deleteTopics({ topics: [...topics] })).catch((e: unknown) => log(`cannot delete topics ${topics.join(", ")}: ${String(e)}`))
