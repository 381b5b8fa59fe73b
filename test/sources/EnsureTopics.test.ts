import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import type { Admin } from "kafkajs"
import { ensureTopics } from "../../src/sources/KafkaClient.ts"

/** kafkajs's error for a topic a broker has not heard of yet. */
const notHosted = (): Error =>
  Object.assign(new Error("This server does not host this topic-partition"), { name: "KafkaJSProtocolError" })

/**
 * An admin whose broker knows `topics` (name → partitions) once `metadataMissesLeft`
 * metadata reads have answered "not hosted", and whose topic creation answers `create`.
 */
const fakeAdmin = (opts: {
  readonly existing: ReadonlyArray<string>
  readonly create: (names: ReadonlyArray<string>, partitions: number) => Promise<boolean>
  metadataMissesLeft: number
  readonly partitions: Map<string, number>
}): Admin =>
  ({
    listTopics: async () => [...opts.existing],
    createTopics: async ({ topics }: { topics: Array<{ topic: string; numPartitions: number }> }) =>
      opts.create(topics.map((t) => t.topic), topics[0]!.numPartitions),
    fetchTopicMetadata: async ({ topics }: { topics: Array<string> }) => {
      if (opts.metadataMissesLeft > 0) {
        opts.metadataMissesLeft -= 1
        throw notHosted()
      }
      return { topics: topics.map((name) => ({ name, partitions: Array.from({ length: opts.partitions.get(name) ?? 0 }, (_, i) => ({ partitionId: i })) })) }
    }
  }) as unknown as Admin

describe("ensureTopics", () => {
  it.live("takes topics whose creation gave up waiting for leaders once the broker's metadata has them", () =>
    Effect.gen(function*() {
      const partitions = new Map<string, number>()
      const admin = fakeAdmin({
        existing: [],
        partitions,
        metadataMissesLeft: 3,
        // the controller created them, but kafkajs's wait for their leaders saw "not hosted"
        create: async (names, n) => {
          for (const t of names) partitions.set(t, n)
          throw notHosted()
        }
      })
      const n = yield* ensureTopics(admin, ["clicks", "checkouts"], 3)
      assert.strictEqual(n, 3)
    }))

  it.live("gives a new topic the partition count of the one that exists", () =>
    Effect.gen(function*() {
      const partitions = new Map([["clicks", 4]])
      const created: Array<[ReadonlyArray<string>, number]> = []
      const admin = fakeAdmin({
        existing: ["clicks"],
        partitions,
        metadataMissesLeft: 0,
        create: async (names, n) => {
          created.push([names, n])
          for (const t of names) partitions.set(t, n)
          return true
        }
      })
      assert.strictEqual(yield* ensureTopics(admin, ["clicks", "checkouts"], 1), 4)
      assert.deepStrictEqual(created, [[["checkouts"], 4]])
    }))

  it.live("fails on any other creation error, and on topics that are not co-partitioned", () =>
    Effect.gen(function*() {
      const refused = yield* Effect.exit(ensureTopics(fakeAdmin({
        existing: [],
        partitions: new Map(),
        metadataMissesLeft: 0,
        create: async () => {
          throw Object.assign(new Error("Topic authorization failed"), { name: "KafkaJSProtocolError" })
        }
      }), ["a", "b"], 1))
      assert.isTrue(Exit.isFailure(refused))
      assert.match(String(Exit.isFailure(refused) ? refused.cause : ""), /cannot create topics a, b: Topic authorization failed/)

      const mismatch = yield* Effect.exit(ensureTopics(fakeAdmin({
        existing: ["a", "b"],
        partitions: new Map([["a", 2], ["b", 3]]),
        metadataMissesLeft: 0,
        create: async () => true
      }), ["a", "b"], 1))
      assert.isTrue(Exit.isFailure(mismatch))
      assert.match(String(Exit.isFailure(mismatch) ? mismatch.cause : ""), /not co-partitioned/)
    }))
})
