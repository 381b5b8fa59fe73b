/**
 * `npm run bench`: measures the pipeline on this machine and prints JSON. Every figure is
 * compared with anchors measured in the same run on the same data, so a noisy machine
 * shows up in both:
 *
 *   anchor.jsonParse       JSON.parse of every message (the floor of any decoder)
 *   anchor.decode          our Schema decode of every message
 *   engine.discard        replay → decode → align → watermark → join (one task), output discarded
 *   engine.discard.withLake  the same with the raw-lake tap writing Parquet (ratios.lakeTapCost)
 *   engine.discard.withRecs  the same with the recommender job (ratios.recsCost)
 *   recommender            the model alone with 100 k users and 10 k products: heap per user
 *                          (after a forced GC: run with --expose-gc, as `npm run bench` does)
 *   pipeline.postgres      replay → ... → PostgreSQL upserts + positions (when a server answers)
 *   pipeline.recsApi       GET /api/users/:id/recommendations, one after another, while
 *                          `node dist/main.js` runs the generator at BENCH_API_RATE (5000/s)
 *
 * Settings: BENCH_EVENTS (default 400000), DATABASE_URL or TEST_DATABASE_ADMIN_URL for the
 * PostgreSQL run (a scratch database is created and dropped).
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { decodeCheckout, decodeClick } from "../domain/Events.ts"
import * as Runner from "../engine/Runner.ts"
import { EngineStats } from "../engine/EngineStats.ts"
import { memoryOwnership } from "../engine/Topology.ts"
import { makeProducts, makeUsers, productsCsv, usersCsv } from "../generator/Catalog.ts"
import { makeSimulator } from "../generator/Shoppers.ts"
import { defaultData } from "../generator/writeData.ts"
import * as Attribution from "../jobs/Attribution.ts"
import * as RawLake from "../jobs/RawLake.ts"
import * as Recommender from "../jobs/Recommender.ts"
import { measureModel } from "../recs/measureModel.ts"
import { measureRecsApi, type RecsApiMeasurement } from "./RecsApi.ts"
import * as LakeSink from "../sinks/LakeSink.ts"
import * as ParquetWriter from "../sinks/ParquetWriter.ts"
import * as AttributionPipeline from "../jobs/AttributionPipeline.ts"
import * as Dimensions from "../jobs/Dimensions.ts"
import * as LoadDimensions from "../jobs/LoadDimensions.ts"
import * as Database from "../sinks/Database.ts"
import * as ReplaySource from "../sources/ReplaySource.ts"

const events = Number(process.env["BENCH_EVENTS"] ?? 400_000)
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "insights-bench-"))
const topics = { clicks: "clicks", checkouts: "checkouts" }
const settings = {
  clicksTopic: "clicks", checkoutsTopic: "checkouts", windowMs: 3_600_000, dedupRetentionMs: 3_600_000,
  outOfOrdernessMs: 15_000, idleTimeoutMs: 30_000, flushRows: 5_000, flushIntervalMs: 250, maxFutureMs: 86_400_000,
  lakeDir: path.join(dir, "lake"), lakeFlushMs: 300_000, lakeBufferRows: 100_000, recsSnapshotMs: 60_000, recsWriteMs: 500
}

const generate = () => {
  const users = makeUsers(defaultData.userSeed, defaultData.userCount)
  const products = makeProducts(defaultData.productSeed, defaultData.productCount)
  const sim = makeSimulator({ seed: 1, users, products })
  const lines = { clicks: [] as Array<string>, checkouts: [] as Array<string> }
  const start = Date.parse("2026-11-01T00:00:00Z")
  for (let i = 0; i < events; i++) {
    const m = sim.next(start + i * 5) // 200 msg/s of event time
    lines[m.topic].push(`${m.key}\t${m.value}`)
  }
  fs.writeFileSync(path.join(dir, "clicks.txt"), lines.clicks.join("\n") + "\n")
  fs.writeFileSync(path.join(dir, "checkouts.txt"), lines.checkouts.join("\n") + "\n")
  fs.writeFileSync(path.join(dir, "Users.csv"), usersCsv(users))
  fs.writeFileSync(path.join(dir, "Products.csv"), productsCsv(products))
  return lines
}

const files = (): Array<ReplaySource.ReplayFile> => [
  { topic: "clicks", path: path.join(dir, "clicks.txt") },
  { topic: "checkouts", path: path.join(dir, "checkouts.txt") }
]

const rate = (n: number, ms: number) => Math.round(n / (ms / 1000))

const timed = async (f: () => Promise<unknown>): Promise<number> => {
  const t0 = performance.now()
  await f()
  return performance.now() - t0
}

const anchors = (lines: { clicks: Array<string>; checkouts: Array<string> }) => {
  const values = { clicks: lines.clicks.map((l) => l.slice(l.indexOf("\t") + 1)), checkouts: lines.checkouts.map((l) => l.slice(l.indexOf("\t") + 1)) }
  let t0 = performance.now()
  let sink = 0
  for (const v of values.clicks) sink += JSON.parse(v) ? 1 : 0
  for (const v of values.checkouts) sink += JSON.parse(v) ? 1 : 0
  const parseMs = performance.now() - t0
  t0 = performance.now()
  for (const v of values.clicks) sink += decodeClick(v) ? 1 : 0
  for (const v of values.checkouts) sink += decodeCheckout(v) ? 1 : 0
  const decodeMs = performance.now() - t0
  if (sink === 0) throw new Error("unreachable")
  return { jsonParse: rate(events, parseMs), decode: rate(events, decodeMs) }
}

/**
 * The engine with attribution's output discarded; `lake`: with the raw-lake tap writing real
 * Parquet files; `recs`: with the recommender job (its model, lists per flush, snapshots off)
 * writing to a discarding sink.
 */
const discard = (lake: boolean, recs = false) =>
  Effect.gen(function*() {
    const source = yield* ReplaySource.make(files())
    const attribution = Attribution.node({ windowMs: settings.windowMs, dedupRetentionMs: settings.dedupRetentionMs }, { write: () => Effect.succeed({ fenced: [] }) })
    const tap = lake
      ? RawLake.node((yield* LakeSink.make({ lakeDir: settings.lakeDir, sourceName: "bench", job: RawLake.JOB, flushAfterMs: settings.lakeFlushMs, maxBufferRows: settings.lakeBufferRows },
          yield* ParquetWriter.make, LakeSink.memoryStore())).sink)
      : undefined
    const products = new Map(makeProducts(defaultData.productSeed, defaultData.productCount).map((p) => [p.product_id, { category: p.category, brand: p.brand }]))
    const recommender = recs
      ? Recommender.node(new Recommender.Recommenders((id) => products.get(id)), { snapshotEveryMs: Infinity }, { write: () => Effect.succeed({ fenced: [] }) })
      : undefined
    const jobs = [attribution, ...(tap === undefined ? [] : [tap]), ...(recommender === undefined ? [] : [recommender])]
    const stats = yield* Runner.run({
      source,
      topology: { decode: Attribution.decode(topics), ownership: memoryOwnership(), jobs }
    })
    return stats.eventsTotal
  }).pipe(Effect.scoped)

const postgres = async (): Promise<Record<string, number | RecsApiMeasurement> | { skipped: string }> => {
  const admin = process.env["TEST_DATABASE_ADMIN_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"
  const name = `insights_bench_${process.pid}`
  const adminQuery = (q: string) => Effect.runPromise(SqlClient.SqlClient.use((sql) => sql.unsafe(q)).pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(admin), maxConnections: 1 })), Effect.scoped))
  try {
    await adminQuery(`CREATE DATABASE ${name}`)
  } catch (e) {
    return { skipped: `no PostgreSQL at ${admin}: ${(e as Error).message}` }
  }
  const url = new URL(admin)
  url.pathname = `/${name}`
  try {
    const layer = Layer.provideMerge(Dimensions.layer(60_000), Database.layer(url.toString()))
    const prepare = Effect.gen(function*() {
      yield* LoadDimensions.loadUsers(path.join(dir, "Users.csv"))
      yield* LoadDimensions.loadProducts(path.join(dir, "Products.csv"))
    })
    await Effect.runPromise(prepare.pipe(Effect.provide(Database.layer(url.toString())), Effect.scoped))
    let rows = 0
    const ms = await timed(() => Effect.runPromise(Effect.gen(function*() {
      const dims = yield* Dimensions.Dimensions
      yield* dims.refresh
      const source = yield* ReplaySource.make(files())
      const stats = yield* AttributionPipeline.run(source, settings, new EngineStats())
      rows = stats.primary.sink.rowsWritten
    }).pipe(Effect.provide(layer), Effect.scoped)))
    const pipeline = { eventsPerSecond: rate(events, ms), rowsWritten: rows, seconds: Math.round(ms) / 1000 }
    // the recommendations API while the daemon runs at load, on a database of its own
    await adminQuery(`DROP DATABASE IF EXISTS ${name}_api WITH (FORCE)`)
    await adminQuery(`CREATE DATABASE ${name}_api`)
    const apiUrl = new URL(admin)
    apiUrl.pathname = `/${name}_api`
    try {
      const recsApi = await measureRecsApi(apiUrl.toString(), { rate: Number(process.env["BENCH_API_RATE"] ?? 5_000), requests: Number(process.env["BENCH_API_REQUESTS"] ?? 2_000) })
      return { ...pipeline, recsApi }
    } finally {
      await adminQuery(`DROP DATABASE IF EXISTS ${name}_api WITH (FORCE)`)
    }
  } finally {
    await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  }
}

const main = async () => {
  const lines = generate()
  const anchor = anchors(lines)
  const engine: Record<string, { eventsPerSecond: number; peakRssMiB: number }> = {}
  const runs = [
    ["discard", false, false], ["discard.withLake", true, false], ["discard.withRecs", false, true],
    ["discard.again", false, false], ["discard.withLake.again", true, false], ["discard.withRecs.again", false, true]
  ] as const
  for (const [name, lake, recs] of runs) {
    const rss0 = process.memoryUsage().rss
    let peak = rss0
    const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 20)
    const ms = await timed(() => Effect.runPromise(discard(lake, recs)))
    clearInterval(sampler)
    engine[name] = { eventsPerSecond: rate(events, ms), peakRssMiB: Math.round(peak / 2 ** 20) }
  }
  // each measured twice, interleaved, so that a noisy neighbour hits both; the better of two counts
  const best = (a: string, b: string) => Math.max(engine[a]!.eventsPerSecond, engine[b]!.eventsPerSecond)
  const pg = await postgres()
  // the recommender's model at the size the issue names: 100 k users, 10 k products
  const recommender = measureModel({ users: Number(process.env["BENCH_RECS_USERS"] ?? 100_000), products: 10_000 })
  const result = {
    events,
    node: process.version,
    anchor,
    engine,
    pipelinePostgres: pg,
    recommender,
    ratios: {
      engineVsJsonParse: +(engine["discard"]!.eventsPerSecond / anchor.jsonParse).toFixed(3),
      engineVsDecode: +(engine["discard"]!.eventsPerSecond / anchor.decode).toFixed(3),
      /** the raw-lake tap's cost: 1 − with/without (target ≤ 0.15) */
      lakeTapCost: +(1 - best("discard.withLake", "discard.withLake.again") / best("discard", "discard.again")).toFixed(3),
      /** the recommender job's cost: 1 − with/without */
      recsCost: +(1 - best("discard.withRecs", "discard.withRecs.again") / best("discard", "discard.again")).toFixed(3),
      ...("eventsPerSecond" in pg ? { postgresVsEngine: +((pg["eventsPerSecond"] as number) / engine["discard"]!.eventsPerSecond).toFixed(3) } : {})
    }
  }
  process.stdout.write(JSON.stringify(result, null, 2) + "\n")
  fs.rmSync(dir, { recursive: true, force: true })
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? e}\n`)
  process.exit(1)
})
