/**
 * The daemon (SPEC §8): composes the layers and runs the attribution job until SIGINT or
 * SIGTERM, then stops reading, writes what is in flight, commits positions, closes
 * connections and exits 0. Resources are released in reverse order of acquisition, so an
 * embedded PostgreSQL, acquired first, is stopped last.
 */
import { Clock, Context, Effect, Layer, Option, Schedule } from "effect"
import type { Scope } from "effect"
import { SqlClient } from "effect/sql"
import * as fs from "node:fs"
import * as os from "node:os"
import { EngineConfig } from "./config.ts"
import * as CommandDatabase from "./commands/Database.ts"
import { EngineStats } from "./engine/EngineStats.ts"
import type { Source } from "./engine/Source.ts"
import * as HttpHealth from "./http/Health.ts"
import * as HttpInsights from "./http/Insights.ts"
import * as HttpServer from "./http/Server.ts"
import * as Attribution from "./jobs/Attribution.ts"
import * as AttributionPipeline from "./jobs/AttributionPipeline.ts"
import * as HourlyRollup from "./jobs/HourlyRollup.ts"
import * as Dimensions from "./jobs/Dimensions.ts"
import * as ExportSchedule from "./jobs/ExportSchedule.ts"
import * as LoadDimensions from "./jobs/LoadDimensions.ts"
import * as Recommender from "./jobs/Recommender.ts"
import * as Retention from "./jobs/Retention.ts"
import * as Workers from "./Workers.ts"
import * as EngineStatusSink from "./sinks/EngineStatusSink.ts"
import { setGrafanaPassword } from "./sinks/GrafanaRole.ts"
import * as PositionStore from "./sinks/PositionStore.ts"
import { parseBrokers } from "./sources/KafkaClient.ts"
import * as KafkaSource from "./sources/KafkaSource.ts"
import type { SourceError } from "./sources/SourceError.ts"

/** `data/Users.csv` and `data/Products.csv` are loaded the first time, into empty tables. */
const loadDefaultDimensions = (config: EngineConfig) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [counts] = yield* sql<{ users: number; products: number }>`
      SELECT (SELECT count(*) FROM shop.users)::int AS users, (SELECT count(*) FROM shop.products)::int AS products`
    if (counts!.users === 0 && fs.existsSync(config.usersCsv)) {
      const r = yield* LoadDimensions.loadUsers(config.usersCsv)
      yield* Effect.logInfo(`loaded ${r.upserted} users from ${config.usersCsv}`)
    }
    if (counts!.products === 0 && fs.existsSync(config.productsCsv)) {
      const r = yield* LoadDimensions.loadProducts(config.productsCsv)
      yield* Effect.logInfo(`loaded ${r.upserted} products from ${config.productsCsv}`)
    }
  })

/** The source, and whether it is connected (ok for the generator; the broker's reachability for Kafka). */
interface DaemonSource {
  readonly source: Source<unknown>
  readonly health: () => HttpHealth.Check
}

const makeSource = (config: EngineConfig): Effect.Effect<DaemonSource, SourceError, Scope.Scope | SqlClient.SqlClient> =>
  Effect.gen(function*() {
    if (Option.isSome(config.kafkaBrokers)) {
      // where each partition starts: the positions committed with the rows, not the group's offsets
      const sql = yield* SqlClient.SqlClient
      const name = KafkaSource.sourceName(config.kafkaGroupId)
      const kafka = yield* KafkaSource.make({
        brokers: parseBrokers(config.kafkaBrokers.value),
        groupId: config.kafkaGroupId,
        topics: [config.clicksTopic, config.checkoutsTopic],
        partitions: config.kafkaPartitions,
        sessionTimeoutMs: config.kafkaSessionTimeoutMs,
        giveUpMs: config.kafkaGiveUpMs,
        startOffsets: (partitions) =>
          PositionStore.startOffsets(name, AttributionPipeline.jobNames, partitions).pipe(
            Effect.retry({ schedule: Schedule.exponential("200 millis"), times: 6 }),
            Effect.provideService(SqlClient.SqlClient, sql)
          )
      })
      return { source: kafka, health: kafka.health }
    }
    const startedAt = yield* Clock.currentTimeMillis
    const seed = Option.getOrElse(config.generatorSeed, () => startedAt % 2_147_483_647)
    yield* Effect.logInfo(`no KAFKA_BROKERS: the in-process generator (seed ${seed}, ${config.generatorRate} msg/s)`)
    // loaded only here: the generator's data (faker's among it) is no part of a Kafka start
    const GeneratorSource = yield* Effect.promise(() => import("./sources/GeneratorSource.ts"))
    const source = GeneratorSource.make({
      seed,
      startedAt,
      rate: config.generatorRate,
      partitions: config.kafkaPartitions,
      topics: { clicks: config.clicksTopic, checkouts: config.checkoutsTopic }
    })
    return { source, health: () => ({ ok: true }) }
  })

export const daemon = Effect.gen(function*() {
  const config = yield* EngineConfig
  const stats = new EngineStats()
  // WORKERS=N (Kafka): this process is the primary and forks N − 1 more members (src/Workers.ts)
  const worker = Workers.workerIndex()
  const primary = worker === undefined
  const database = yield* Layer.build(CommandDatabase.layer(config))
  yield* Effect.gen(function*() {
    const startedAt = yield* Clock.currentTimeMillis
    let team: { readonly views: () => ReadonlyArray<Workers.WorkerView> } | undefined
    if (primary) {
      yield* loadDefaultDimensions(config)
      yield* setGrafanaPassword(config.grafanaPassword).pipe(
        Effect.catch((e) => Effect.logWarning(`cannot set the grafana role's password: ${e.message}`))
      )
      // with Kafka, one member per core unless WORKERS says otherwise; the generator is one process
      const workers = Option.isNone(config.kafkaBrokers) ? 1 : Option.getOrElse(config.workers, () => os.availableParallelism())
      if (Option.isNone(config.kafkaBrokers) && Option.getOrElse(config.workers, () => 1) > 1) {
        yield* Effect.logWarning(`WORKERS=${Option.getOrThrow(config.workers)} needs KAFKA_BROKERS: the in-process generator runs in one process`)
      } else if (workers > 1) {
        // after the migrations: the workers find the schema in place
        team = yield* Workers.supervise(workers)
        yield* Effect.logInfo(`${workers} workers: this process and ${workers - 1} more in the consumer group`)
      }
    }
    const { source, health } = yield* makeSource(config)
    // connected: the broker answers and partitions are assigned
    const connected = (): HttpHealth.Check => {
      const h = health()
      if (!h.ok) return h
      return stats.partitions.size > 0 ? { ok: true } : { ok: false, detail: "source not connected (no partitions assigned yet)" }
    }
    const dimensions = yield* Layer.build(Dimensions.layer(config.dimensionRefreshMs))
    const recommenders = new Recommender.Recommenders(Recommender.catalogOf(Context.get(dimensions, Dimensions.Dimensions)))
    const workersRunning = (now: number): HttpHealth.Check => {
      const down = (team?.views() ?? []).filter((w) => !w.alive || w.lastReportAt === undefined || now - w.lastReportAt > 5_000)
      return down.length === 0 ? { ok: true } : { ok: false, detail: `worker ${down.map((w) => w.index).join(", ")} not running or not reporting (started again)` }
    }
    const services = Context.merge(dimensions, yield* Layer.build(Layer.mergeAll(
      HttpHealth.layer(connected, (now) => {
        const moving = HttpHealth.progress(stats, config.stuckAfterMs, startedAt, now)
        return moving.ok ? workersRunning(now) : moving
      }),
      HttpInsights.layer,
      Layer.succeed(Recommender.RecommenderRegistry, recommenders)
    )))
    if (primary) {
      yield* Layer.build(HttpServer.layer(config.httpPort, stats, team?.views).pipe(Layer.provide(Layer.succeedContext(services))))
      yield* Effect.logInfo(`status on http://127.0.0.1:${config.httpPort}/`)
      yield* EngineStatusSink.sample(stats, 5_000).pipe(Effect.forkScoped)
      if (source._tag === "Unbounded") {
        // every partition of both topics must have committed a watermark before an hour counts as passed
        const partitions = 2 * (source.partitionsPerTopic ?? config.kafkaPartitions)
        yield* HourlyRollup.schedule(source.name, Attribution.JOB, partitions, config.rollupEveryMs, stats.scheduledJob(HourlyRollup.JOB_NAME))
      }
      yield* Retention.schedule({
        engineStatusMs: config.engineStatusRetentionMs, ingestErrorsMs: config.ingestErrorsRetentionMs, lateEventsMs: config.lateEventsRetentionMs
      }, config.retentionEveryMs, stats.scheduledJob(Retention.JOB_NAME))
      // the midnight export (SPEC §6): a catch-up now, then at 00:01 in EXPORT_TZ; one process of many runs it
      // it waits for the day's checkouts read so far to be written (the watermark past its end)
      const progress = source._tag === "Unbounded" ? { sourceName: source.name, job: Attribution.JOB } : undefined
      yield* ExportSchedule.runOnDatabase({ lakeDir: config.lakeDir, timeZone: config.exportTz, progress }, stats.scheduledJob(ExportSchedule.JOB_NAME),
        { completeWaitMs: ExportSchedule.completeWaitFor(config.idleTimeoutMs) })
        .pipe(Effect.forkScoped)
    } else {
      // a worker: no HTTP, no schedules; the primary shows its figures
      const self = HttpServer.selfReport(stats)
      yield* Workers.reportToPrimary(() => Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        return { type: "report" as const, status: self.status(now), metrics: yield* self.metrics(now) }
      }))
    }
    yield* AttributionPipeline.run(source, config, stats, undefined, recommenders).pipe(Effect.provide(services))
  }).pipe(Effect.provide(database))
}).pipe(Effect.scoped)
