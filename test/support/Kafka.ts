/**
 * A real Kafka broker for tests: `KAFKA_BROKERS` when set (test/globalSetup.ts sets it when
 * it starts one), else 127.0.0.1:9092 when something answers there. Without a broker the
 * Kafka suites are skipped on a laptop but FAIL under `CI=true`: CI never passes by skipping.
 *
 * Every test names its own topics and group (`uniqueName`), so suites never share state and
 * need no cleanup between runs.
 */
import kafkajs from "kafkajs"
import type { Kafka } from "kafkajs"
import { randomBytes } from "node:crypto"
import * as net from "node:net"
import { inject } from "vitest"

const { Kafka: KafkaClass, logLevel, Partitioners } = kafkajs

export const isCI = process.env["CI"] === "true"

const answers = (hostPort: string): Promise<boolean> => {
  const i = hostPort.lastIndexOf(":")
  const host = hostPort.slice(0, i)
  const port = Number(hostPort.slice(i + 1))
  return new Promise((resolve) => {
    const socket = net.connect({ host, port })
    socket.setTimeout(2_000)
    socket.once("connect", () => { socket.destroy(); resolve(true) })
    socket.once("timeout", () => { socket.destroy(); resolve(false) })
    socket.once("error", () => resolve(false))
  })
}

/** The brokers to test against, or undefined (skip); throws under CI=true when none answers. */
export const kafkaBrokers = async (): Promise<string | undefined> => {
  const candidate = process.env["KAFKA_BROKERS"] || inject("kafkaBrokers") || "127.0.0.1:9092"
  const first = candidate.split(",")[0]!.trim()
  if (await answers(first)) return candidate
  if (isCI) throw new Error(`Kafka broker required under CI=true: run scripts/kafka.sh start (nothing answers on ${first})`)
  return undefined
}

/** A name no other test uses: `prefix-<hex>`. */
export const uniqueName = (prefix: string): string => `${prefix}-${randomBytes(4).toString("hex")}`

export const client = (brokers: string): Kafka =>
  new KafkaClass({ clientId: "insights-tests", brokers: brokers.split(","), logLevel: logLevel.NOTHING })

export const createTopics = async (brokers: string, topics: ReadonlyArray<string>, partitions: number): Promise<void> => {
  const admin = client(brokers).admin()
  await admin.connect()
  try {
    // kafkajs waits for the leaders by reading metadata, which a broker may not have for a topic
    // created a moment ago ("does not host this topic-partition"): ask again (an existing topic is kept)
    for (let attempt = 1; ; attempt++) {
      try {
        await admin.createTopics({ topics: topics.map((topic) => ({ topic, numPartitions: partitions })), waitForLeaders: true })
        break
      } catch (e) {
        if (attempt >= 10 || !/does not host this topic-partition/i.test((e as Error).message)) throw e
        await new Promise((r) => setTimeout(r, 200))
      }
    }
  } finally {
    await admin.disconnect()
  }
}

export const deleteTopics = async (brokers: string, topics: ReadonlyArray<string>): Promise<void> => {
  const admin = client(brokers).admin()
  await admin.connect()
  try {
    await admin.deleteTopics({ topics: [...topics] })
  } catch {
    // best effort
  } finally {
    await admin.disconnect()
  }
}

export interface TestMessage {
  readonly key: string | null
  readonly value: string | null
  /** explicit partition; else the murmur2 partitioner (keyed) or kafkajs's choice */
  readonly partition?: number
}

/** Produces in order (acks=all), in requests of at most ~900 kB (the broker refuses record batches over 1 MB). */
export const produce = async (brokers: string, topic: string, messages: ReadonlyArray<TestMessage>): Promise<void> => {
  const producer = client(brokers).producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false })
  await producer.connect()
  try {
    for (let i = 0; i < messages.length;) {
      let bytes = 0
      let j = i
      while (j < messages.length && (j === i || bytes < 900_000)) {
        bytes += (messages[j]!.key?.length ?? 0) + (messages[j]!.value?.length ?? 0) + 80
        j++
      }
      await producer.send({
        topic,
        acks: -1,
        messages: messages.slice(i, j).map((m) => ({
          key: m.key,
          value: m.value,
          ...(m.partition === undefined ? {} : { partition: m.partition })
        }))
      })
      i = j
    }
  } finally {
    await producer.disconnect()
  }
}

/** Per partition: the offset the next message gets. */
export const endOffsets = async (brokers: string, topic: string): Promise<Map<number, number>> => {
  const admin = client(brokers).admin()
  await admin.connect()
  try {
    return new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.high)]))
  } finally {
    await admin.disconnect()
  }
}

/** The group's committed offsets of `topic` (−1: none). */
export const committedOffsets = async (brokers: string, groupId: string, topic: string): Promise<Map<number, number>> => {
  const admin = client(brokers).admin()
  await admin.connect()
  try {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] })
    return new Map((t?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]))
  } finally {
    await admin.disconnect()
  }
}
