/**
 * The Kafka edge shared by the source and the generator: a kafkajs client whose logs go
 * through Effect's logger, the topic setup (create when missing, refuse topics that are not
 * co-partitioned), partition end offsets, and a producer. kafkajs types stay in `sources/`:
 * callers see Effects, plain records and `SourceError`.
 */
import { Effect, Schedule } from "effect"
import type { Context, Scope } from "effect"
import kafkajs from "kafkajs"
import type { Admin, Kafka, LogEntry, Producer } from "kafkajs"
import { SourceError } from "./SourceError.ts"

const { Kafka: KafkaClass, logLevel, Partitioners, CompressionTypes } = kafkajs

export interface KafkaSettings {
  /** `host:port` list */
  readonly brokers: ReadonlyArray<string>
  readonly clientId: string
}

/** `KAFKA_BROKERS` ("h1:9092,h2:9092") as a list. */
export const parseBrokers = (text: string): Array<string> =>
  text.split(",").map((b) => b.trim()).filter((b) => b !== "")

/** The broker a laptop runs (`scripts/kafka.sh start`). */
export const defaultBrokers = "127.0.0.1:9092"

/** kafkajs error → SourceError, telling a broker we cannot reach from a protocol failure. */
export const toSourceError = (what: string) => (cause: unknown): SourceError => {
  const e = cause as { name?: string; message?: string; cause?: unknown }
  const names: Array<string> = []
  for (let c: { name?: string; cause?: unknown } | undefined = e; c !== undefined && names.length < 5; c = c.cause as typeof c) {
    if (typeof c.name === "string") names.push(c.name)
  }
  const unreachable = names.some((n) =>
    n === "KafkaJSConnectionError" || n === "KafkaJSNumberOfRetriesExceeded" || n === "KafkaJSBrokerNotFound" ||
    n === "KafkaJSConnectionClosedError" || n === "KafkaJSRequestTimeoutError" || n === "KafkaJSNoBrokerAvailableError" ||
    n === "KafkaJSGroupCoordinatorNotFound")
  return new SourceError({
    reason: unreachable ? "BrokerUnavailable" : "Protocol",
    message: `${what}: ${e.message ?? String(cause)}`,
    cause
  })
}

/** Runs a kafkajs promise as an Effect failing with SourceError. */
export const attempt = <A>(what: string, f: () => Promise<A>): Effect.Effect<A, SourceError> =>
  Effect.tryPromise({ try: f, catch: toSourceError(what) })

/**
 * Messages kafkajs logs at ERROR that are retried, not failures: a fresh cluster creating
 * `__consumer_offsets`, and a rebalance (an offset commit of the generation that just ended,
 * a member whose session expired rejoining). Kafka's committed offsets are advisory here (the
 * positions are in PostgreSQL), so a refused commit loses nothing.
 */
const TRANSIENT = /coordinator is not available|coordinator is loading|group is rebalancing|There is no leader for this topic-partition|This server does not host this topic-partition|Specified group generation id is not valid|coordinator is not aware of this member/i

/** What kafkajs logs, at ERROR, for every retry while the broker is away. */
const OUTAGE = /Connection error|Connection timeout|Closed connection|Failed to connect to seed broker|ECONNREFUSED|Crash:|Restarting the consumer/i

/**
 * A kafkajs client whose log lines (WARN and ERROR) are Effect log lines of the current
 * context, with the retried coordinator noise of a fresh cluster demoted to DEBUG, and so
 * its connection errors and crashes while `explained()` says the caller knows their cause: an
 * outage it already reported (dozens of lines a second otherwise), or its own stop.
 */
export const makeClient = (settings: KafkaSettings, explained: () => boolean = () => false): Effect.Effect<Kafka> =>
  Effect.gen(function*() {
    const context: Context.Context<never> = yield* Effect.context<never>()
    const run = Effect.runForkWith(context)
    const logCreator = () => ({ namespace, level, log }: LogEntry) => {
      const { message, timestamp: _t, logger: _l, stack: _s, ...extra } = log
      const detail = Object.keys(extra).length > 0 ? ` ${JSON.stringify(extra)}` : ""
      const line = `kafkajs ${namespace}: ${message}${detail}`
      if (level !== logLevel.ERROR && level !== logLevel.WARN) return
      if (TRANSIENT.test(line) || (OUTAGE.test(line) && explained())) run(Effect.logDebug(line))
      else run(level === logLevel.ERROR ? Effect.logError(line) : Effect.logWarning(line))
    }
    return new KafkaClass({
      clientId: settings.clientId,
      brokers: [...settings.brokers],
      logLevel: logLevel.WARN,
      logCreator,
      connectionTimeout: 3_000,
      retry: { initialRetryTime: 300, retries: 8, maxRetryTime: 5_000 }
    })
  })

/** The innermost message of a kafkajs error ("connect ECONNREFUSED 127.0.0.1:9092"), on one line. */
export const rootMessage = (cause: unknown): string => {
  let c = cause as { message?: string; cause?: unknown } | undefined
  while (c?.cause !== undefined && c.cause !== c && typeof (c.cause as { message?: unknown }).message === "string") c = c.cause as typeof c
  return (c?.message ?? String(cause)).replace(/\s*\n\s*/g, " ").trim()
}

/**
 * A probe of the brokers for the scope: each run asks one of them for the cluster's metadata,
 * without retries and within `timeoutMs` (a broker that accepts connections but does not
 * answer counts as unreachable). Its own client, silent: the probe fails every second while
 * the broker is away, and that is reported through `/readyz`, not the log.
 */
export const makeProbe = (settings: KafkaSettings, timeoutMs = 3_000): Effect.Effect<Effect.Effect<void, SourceError>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const kafka = new KafkaClass({
      clientId: `${settings.clientId}-probe`,
      brokers: [...settings.brokers],
      logLevel: logLevel.NOTHING,
      connectionTimeout: Math.min(1_000, timeoutMs),
      requestTimeout: timeoutMs,
      retry: { retries: 0 }
    })
    let admin: Admin | undefined
    const drop = () => {
      const a = admin
      admin = undefined
      return a === undefined ? Promise.resolve() : a.disconnect().catch(() => undefined)
    }
    yield* Effect.addFinalizer(() => Effect.promise(drop).pipe(Effect.timeout("2 seconds"), Effect.ignore))
    const ask = attempt("Kafka broker unreachable", async () => {
      if (admin === undefined) {
        const a = kafka.admin()
        admin = a
        await a.connect()
      }
      await admin.describeCluster()
    })
    return ask.pipe(
      Effect.timeoutOrElse({
        duration: timeoutMs,
        orElse: () => Effect.fail(new SourceError({ reason: "BrokerUnavailable", message: `no answer within ${timeoutMs} ms` }))
      }),
      Effect.tapError(() => Effect.promise(drop))
    )
  })

/** An admin connection for the scope. */
export const makeAdmin = (kafka: Kafka): Effect.Effect<Admin, SourceError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const admin = kafka.admin()
      yield* attempt("cannot connect to Kafka", () => admin.connect())
      return admin
    }),
    (admin) => Effect.promise(() => admin.disconnect().catch(() => undefined))
  )

/** A broker that has not yet heard of a topic just created. */
const notInMetadataYet = (e: SourceError): boolean => /does not host this topic-partition/i.test(e.message)

/**
 * Creates the missing topics and checks that all of them have the same number of
 * partitions (the engine joins partition n of one with partition n of the other: producers
 * key both by user id). A missing topic gets the partition count of an existing one, or
 * `partitions` when none exists. Returns the partition count.
 */
export const ensureTopics = (admin: Admin, topics: ReadonlyArray<string>, partitions: number): Effect.Effect<number, SourceError> =>
  Effect.gen(function*() {
    // a topic created a moment ago (by us, or by a producer just before) may not be in every
    // broker's metadata yet: asked again for up to 5 s before it counts as an error
    const counts = (names: ReadonlyArray<string>) =>
      attempt("cannot read topic metadata", () => admin.fetchTopicMetadata({ topics: [...names] })).pipe(
        Effect.retry({ while: notInMetadataYet, schedule: Schedule.spaced("200 millis"), times: 25 }),
        Effect.map((m) => new Map(m.topics.map((t) => [t.name, t.partitions.length] as const)))
      )
    const existing = new Set(yield* attempt("cannot list topics", () => admin.listTopics()))
    const missing = topics.filter((t) => !existing.has(t))
    if (missing.length > 0) {
      const present = topics.filter((t) => existing.has(t))
      const known = present.length > 0 ? yield* counts(present) : new Map<string, number>()
      const numPartitions = known.size > 0 ? Math.max(...known.values()) : partitions
      // kafkajs's wait for the new topics' leaders can give up while the controller has created
      // them and the broker still answers "not hosted": the metadata read below waits that out
      yield* attempt(`cannot create topics ${missing.join(", ")}`, () =>
        admin.createTopics({ topics: missing.map((topic) => ({ topic, numPartitions })), waitForLeaders: true })).pipe(
          Effect.catchIf(notInMetadataYet, (e) => Effect.logDebug(`${e.message}; reading their metadata again`))
        )
      yield* Effect.logInfo(`created Kafka topics ${missing.join(", ")} with ${numPartitions} partitions`)
    }
    const all = yield* counts(topics)
    const sizes = topics.map((t) => all.get(t) ?? 0)
    if (new Set(sizes).size > 1) {
      return yield* Effect.fail(new SourceError({
        reason: "TopicMismatch",
        message: `topics ${topics.map((t, i) => `${t} (${sizes[i]} partitions)`).join(" and ")} are not co-partitioned: ` +
          "they must have the same number of partitions, because partition n of one is joined with partition n of the other " +
          "(producers key both by user_id). Recreate one of them, or add partitions so the counts match."
      }))
    }
    return sizes[0] ?? 0
  })

export interface PartitionEnds {
  readonly partition: number
  /** the first offset still in the log */
  readonly low: number
  /** the offset the next message will get (the high watermark) */
  readonly high: number
}

/** The first and next offsets of every partition of `topic`. */
export const partitionEnds = (admin: Admin, topic: string): Effect.Effect<ReadonlyArray<PartitionEnds>, SourceError> =>
  attempt(`cannot read the offsets of ${topic}`, () => admin.fetchTopicOffsets(topic)).pipe(
    Effect.map((rows) => rows.map((r) => ({ partition: r.partition, low: Number(r.low), high: Number(r.high) })))
  )

/** One message to produce: `key` null means no key (the partitioner picks a partition). */
export interface OutgoingMessage {
  readonly topic: string
  readonly key: string | null
  readonly value: string
  /** epoch ms, the record's timestamp; default: the producer's clock */
  readonly timestamp?: number
}

export interface KafkaProducer {
  /** Sends the messages with acks from every in-sync replica, uncompressed. */
  readonly send: (messages: ReadonlyArray<OutgoingMessage>) => Effect.Effect<void, SourceError>
}

/**
 * A producer for the scope, partitioning keyed messages with murmur2 as the Java client
 * does (the same user lands on the same partition number of every topic).
 */
export const makeProducer = (kafka: Kafka): Effect.Effect<KafkaProducer, SourceError, Scope.Scope> =>
  Effect.gen(function*() {
    const producer: Producer = yield* Effect.acquireRelease(
      Effect.gen(function*() {
        const p = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false })
        yield* attempt("cannot connect the producer", () => p.connect())
        return p
      }),
      (p) => Effect.promise(() => p.disconnect().catch(() => undefined))
    )
    const send = (messages: ReadonlyArray<OutgoingMessage>): Effect.Effect<void, SourceError> => {
      if (messages.length === 0) return Effect.void
      const byTopic = new Map<string, Array<{ key: string | null; value: string; timestamp?: string }>>()
      for (const m of messages) {
        let list = byTopic.get(m.topic)
        if (list === undefined) byTopic.set(m.topic, list = [])
        list.push(m.timestamp === undefined ? { key: m.key, value: m.value } : { key: m.key, value: m.value, timestamp: String(m.timestamp) })
      }
      return attempt("cannot produce to Kafka", () =>
        producer.sendBatch({
          acks: -1,
          compression: CompressionTypes.None,
          topicMessages: [...byTopic].map(([topic, msgs]) => ({ topic, messages: msgs }))
        })).pipe(Effect.asVoid)
    }
    return { send }
  })

/**
 * For producers outside `sources/` (the generator): connects, creates the missing topics,
 * checks they are co-partitioned, and opens a producer for the scope.
 */
export const openProducer = (settings: KafkaSettings & { readonly topics: ReadonlyArray<string>; readonly partitions: number }) =>
  Effect.gen(function*() {
    const kafka = yield* makeClient(settings)
    const admin = yield* makeAdmin(kafka)
    const partitions = yield* ensureTopics(admin, settings.topics, settings.partitions)
    const producer = yield* makeProducer(kafka)
    return { send: producer.send, partitions } as const
  })

const REQUEST_BYTES = 900_000

/** Splits messages into produce requests of at most REQUEST_BYTES (a broker refuses a request over its limit, 1 MiB by default). */
export const produceRequests = (messages: ReadonlyArray<OutgoingMessage>): Array<ReadonlyArray<OutgoingMessage>> => {
  const out: Array<ReadonlyArray<OutgoingMessage>> = []
  let start = 0
  let bytes = 0
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!
    const size = m.value.length + (m.key?.length ?? 0) + 70
    if (i > start && bytes + size > REQUEST_BYTES) {
      out.push(messages.slice(start, i))
      start = i
      bytes = 0
    }
    bytes += size
  }
  if (start < messages.length) out.push(messages.slice(start))
  return out
}
