/**
 * One engine process of the bench (forked by Engine.ts): replays its files through decode →
 * align → watermark → the jobs asked for, with every output discarded (attribution, the
 * recommender) or written as real Parquet files to a scratch lake (the raw-lake tap). Every
 * part is built before it reports ready; it times only the run, from the parent's go to the
 * source's end, in wall-clock time comparable with its siblings.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import { load as loadConfig } from "../config.ts"
import * as Runner from "../engine/Runner.ts"
import { memoryOwnership } from "../engine/Topology.ts"
import { makeProducts } from "../generator/Catalog.ts"
import { defaultData } from "../generator/writeData.ts"
import * as Attribution from "../jobs/Attribution.ts"
import * as RawLake from "../jobs/RawLake.ts"
import * as Recommender from "../jobs/Recommender.ts"
import * as LakeSink from "../sinks/LakeSink.ts"
import * as ParquetWriter from "../sinks/ParquetWriter.ts"
import type { ReplayFile } from "../sources/ReplaySource.ts"
import * as ReplaySource from "../sources/ReplaySource.ts"
import { childConfig, peakRssBytes, runChild, waitForGo, wallNow } from "./Common.ts"

export interface EngineWorkerConfig {
  readonly files: ReadonlyArray<ReplayFile>
  readonly lake: boolean
  readonly recs: boolean
  readonly lakeDir: string
}

const config = childConfig<EngineWorkerConfig>()
/** the daemon's settings (its defaults, or this environment's) */
const settings = await Effect.runPromise(loadConfig)
const topics = { clicks: "clicks", checkouts: "checkouts" }
const discard = { write: () => Effect.succeed({ fenced: [] }) }

const run = Effect.gen(function*() {
  const source = yield* ReplaySource.make(config.files)
  const attribution = Attribution.node({ windowMs: 3_600_000, dedupRetentionMs: 3_600_000 }, discard)
  const writer = yield* ParquetWriter.make
  // DuckDB is loaded and opened before the run (~70 ms of module loading otherwise timed as the lake's cost)
  if (config.lake) yield* writer.open
  const tap = config.lake
    ? RawLake.node((yield* LakeSink.make({ lakeDir: config.lakeDir, sourceName: "bench", job: RawLake.JOB, flushAfterMs: 300_000, maxBufferRows: 100_000 },
        writer, LakeSink.memoryStore())).sink)
    : undefined
  const products = new Map(makeProducts(defaultData.productSeed, defaultData.productCount).map((p) => [p.product_id, { category: p.category, brand: p.brand }]))
  const recommender = config.recs
    ? Recommender.node(new Recommender.Recommenders((id) => products.get(id)), { snapshotEveryMs: Infinity, recomputeEveryMs: settings.recsRecomputeMs }, discard)
    : undefined
  const jobs = [attribution, ...(tap === undefined ? [] : [tap]), ...(recommender === undefined ? [] : [recommender])]
  yield* Effect.promise(waitForGo)
  const startedAt = wallNow()
  const stats = yield* Runner.run({ source, topology: { decode: Attribution.decode(topics), ownership: memoryOwnership(), jobs } })
  const endedAt = wallNow()
  return { startedAt, endedAt, events: stats.eventsTotal, peakRssBytes: peakRssBytes() }
}).pipe(Effect.scoped)

runChild(async () => {
  try {
    return await Effect.runPromise(run)
  } finally {
    fs.rmSync(config.lakeDir, { recursive: true, force: true })
  }
})
